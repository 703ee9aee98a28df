//! OpenTelemetry: an OTLP (gRPC) span exporter for the gateway's spans when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, with W3C trace context.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;

/// A tracer provider exporting to `endpoint` over OTLP/gRPC in batches.
pub fn otlp_tracer(endpoint: &str) -> Result<(SdkTracerProvider, Tracer), String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("paved").build())
        .build();
    let tracer = provider.tracer("paved");
    Ok((provider, tracer))
}

/// The OTLP tracer named by `OTEL_EXPORTER_OTLP_ENDPOINT`, or `None` when unset.
pub fn otlp_tracer_from_env() -> Result<Option<(SdkTracerProvider, Tracer)>, String> {
    match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.trim().is_empty() => otlp_tracer(endpoint.trim()).map(Some),
        _ => Ok(None),
    }
}
