//! OpenTelemetry: an OTLP (gRPC) span exporter for the gateway's spans when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, with W3C trace context.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;

/// A tracer provider exporting to `endpoint` over OTLP/gRPC in batches, every trace sampled.
pub fn otlp_tracer(endpoint: &str) -> Result<(SdkTracerProvider, Tracer), String> {
    otlp_tracer_sampled(endpoint, 1.0)
}

/// `PAVED_TRACE_SAMPLE_RATIO` (0–1, default 1): the share of new traces
/// recorded; a caller's sampling decision (its `traceparent`) is followed.
/// Usage records and billing events never depend on it.
pub fn sample_ratio_from_env() -> Result<f64, String> {
    match std::env::var("PAVED_TRACE_SAMPLE_RATIO") {
        Ok(raw) if !raw.trim().is_empty() => raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|r| (0.0..=1.0).contains(r))
            .ok_or_else(|| {
                format!("PAVED_TRACE_SAMPLE_RATIO: `{raw}` is not a number from 0 to 1")
            }),
        _ => Ok(1.0),
    }
}

/// [`otlp_tracer`] recording `ratio` of new traces (parent-based).
pub fn otlp_tracer_sampled(
    endpoint: &str,
    ratio: f64,
) -> Result<(SdkTracerProvider, Tracer), String> {
    use opentelemetry_sdk::trace::Sampler;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP exporter: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))))
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("paved").build())
        .build();
    let tracer = provider.tracer("paved");
    Ok((provider, tracer))
}

/// The OTLP tracer named by `OTEL_EXPORTER_OTLP_ENDPOINT`, or `None` when unset.
pub fn otlp_tracer_from_env() -> Result<Option<(SdkTracerProvider, Tracer)>, String> {
    match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.trim().is_empty() => {
            otlp_tracer_sampled(endpoint.trim(), sample_ratio_from_env()?).map(Some)
        }
        _ => Ok(None),
    }
}
