{%- if values.otel -%}
//! Logging and OpenTelemetry tracing.
//!
//! Spans always get W3C trace ids (so calls to the gateway carry
//! `traceparent`); they are exported over OTLP/HTTP only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. `http://otel-collector:4318`).

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

use crate::trace_context;

/// Flushes spans on shutdown.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports the spans still buffered.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("OpenTelemetry shutdown: {e}");
        }
    }
}

/// The tracer provider: exports over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
pub fn provider(service_name: &str) -> SdkTracerProvider {
    let mut builder = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(service_name.to_owned())
            .build(),
    );
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    if !endpoint.trim().is_empty() {
        // Reads the endpoint (adding /v1/traces) and OTEL_EXPORTER_OTLP_HEADERS itself.
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => builder = builder.with_batch_exporter(exporter),
            Err(e) => eprintln!("OTLP exporter not started ({e}); spans are not exported"),
        }
    }
    builder.build()
}

/// Installs JSON logs (level from `RUST_LOG`, default `info`) and the
/// OpenTelemetry layer. `OTEL_SERVICE_NAME` overrides the service name.
pub fn init(default_service_name: &str) -> Telemetry {
    let service_name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| default_service_name.to_owned());
    let provider = provider(&service_name);
    let tracer = provider.tracer(service_name);
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(tracing_subscriber::fmt::layer().json())
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .init();
    Telemetry { provider }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` a child of the caller's trace (`traceparent` in `inbound`).
pub fn set_parent_from(span: &Span, inbound: &HeaderMap) {
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(inbound));
    if cx.span().span_context().is_valid() {
        span.set_parent(cx);
    }
}

/// The trace headers for a call made inside `span`: the span's own context,
/// or (when no OpenTelemetry layer records it, e.g. in tests) the caller's
/// trace continued by hand.
pub fn outbound_headers(span: &Span, inbound: &HeaderMap) -> HeaderMap {
    let cx = span.context();
    let mut out = HeaderMap::new();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut out));
    }
    if out.contains_key(trace_context::TRACEPARENT) {
        out
    } else {
        trace_context::fallback(inbound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace_context::{TRACEPARENT, TraceParent};

    #[test]
    fn calls_continue_the_callers_trace_in_a_new_span() {
        let provider = provider("test");
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let _guard = tracing::subscriber::set_default(subscriber);

        let mut inbound = HeaderMap::new();
        inbound.insert(
            TRACEPARENT,
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let server = tracing::info_span!("server");
        set_parent_from(&server, &inbound);
        let client = server.in_scope(|| tracing::info_span!("client"));

        let out = outbound_headers(&client, &inbound);
        let sent = TraceParent::parse(out[TRACEPARENT].to_str().unwrap()).unwrap();
        assert_eq!(sent.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(sent.span_id, "00f067aa0ba902b7");
        // The span id is the client span's own, not a made-up one.
        let client_id = client.context().span().span_context().span_id().to_string();
        assert_eq!(sent.span_id, client_id);
    }
}
{%- else -%}
//! Logging. OpenTelemetry was not enabled when this service was created;
//! calls to the gateway still carry W3C trace context (see `trace_context`).

use axum::http::HeaderMap;
use tracing::Span;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

use crate::trace_context;

/// Nothing to flush without OpenTelemetry.
pub struct Telemetry;

impl Telemetry {
    /// Nothing to do.
    pub fn shutdown(self) {}
}

/// Installs JSON logs (level from `RUST_LOG`, default `info`).
pub fn init(_default_service_name: &str) -> Telemetry {
    tracing_subscriber::registry()
        .with(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with(tracing_subscriber::fmt::layer().json())
        .init();
    Telemetry
}

/// Without OpenTelemetry, spans have no trace ids to set.
pub fn set_parent_from(_span: &Span, _inbound: &HeaderMap) {}

/// The trace headers for a call: the caller's trace continued, or a new one.
pub fn outbound_headers(_span: &Span, inbound: &HeaderMap) -> HeaderMap {
    trace_context::fallback(inbound)
}
{%- endif %}
