//! Paved's audit log and billing events for the observability pipeline, so
//! Vault access, LLM traces and spend can be joined: OTLP logs when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, else JSON lines on the sink
//! `PAVED_AUDIT_SINK` names (`stdout`, `stderr` or a file path, appended).
//!
//! The domain emits `tracing` events with the targets [`AUDIT`] (every audit
//! entry: actor, action, target) and [`BILLING`] (every gateway usage
//! record: team, model, cost, trace id); this layer, filtered to those two
//! targets, turns each into one record. A record carries the trace id of the
//! request it came from, which is also the id on the gateway's spans and on
//! the usage row; a provider key read from Vault puts Vault's request id on
//! the same span.

use std::io::Write;
use std::sync::Mutex;

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::Resource;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

pub use paved_core::audit::{AUDIT_TARGET as AUDIT, BILLING_TARGET as BILLING};

/// Where records go.
enum Sink {
    Otlp(SdkLogger),
    Lines(Mutex<Box<dyn Write + Send>>),
}

/// The export layer.
pub struct AuditExport {
    sink: Sink,
}

/// The exporter behind an OTLP sink, to flush and shut down.
pub type Provider = SdkLoggerProvider;

impl AuditExport {
    /// An OTLP/gRPC log exporter to `endpoint`, batched.
    pub fn otlp(endpoint: &str) -> Result<(Self, Provider), String> {
        let exporter = opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| {
                format!("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP log exporter: {e}")
            })?;
        let provider = SdkLoggerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("paved").build())
            .build();
        let logger = provider.logger("paved.audit");
        Ok((
            Self {
                sink: Sink::Otlp(logger),
            },
            provider,
        ))
    }

    /// JSON lines on `sink`: `stdout`, `stderr` or a file (appended, created if missing).
    pub fn lines(sink: &str) -> Result<Self, String> {
        let writer: Box<dyn Write + Send> = match sink {
            "stdout" => Box::new(std::io::stdout()),
            "stderr" => Box::new(std::io::stderr()),
            path => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("PAVED_AUDIT_SINK: cannot open `{path}`: {e}"))?,
            ),
        };
        Ok(Self {
            sink: Sink::Lines(Mutex::new(writer)),
        })
    }

    /// From the environment: OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set,
    /// else `PAVED_AUDIT_SINK`, else nothing.
    pub fn from_env() -> Result<Option<(Self, Option<Provider>)>, String> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        if let Some(endpoint) = var("OTEL_EXPORTER_OTLP_ENDPOINT") {
            let (layer, provider) = Self::otlp(&endpoint)?;
            return Ok(Some((layer, Some(provider))));
        }
        match var("PAVED_AUDIT_SINK").as_deref() {
            None | Some("off") => Ok(None),
            Some(sink) => Ok(Some((Self::lines(sink)?, None))),
        }
    }

    /// This layer, seeing only audit and billing events.
    pub fn layer<S>(self) -> impl Layer<S>
    where
        S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        self.with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target(AUDIT, tracing::Level::INFO)
                .with_target(BILLING, tracing::Level::INFO),
        )
    }
}

/// An event's fields as JSON.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::from(format!("{value:?}")));
    }
}

impl<S: Subscriber> Layer<S> for AuditExport {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let target = event.metadata().target();
        let kind = if target == AUDIT {
            "audit"
        } else if target == BILLING {
            "billing"
        } else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut fields = fields.0;
        fields.remove("message");
        match &self.sink {
            Sink::Lines(writer) => {
                let mut line = Map::new();
                line.insert("at".into(), Value::from(jiff::Timestamp::now().to_string()));
                line.insert("kind".into(), Value::from(kind));
                line.extend(fields);
                let mut writer = writer.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(writer, "{}", Value::Object(line));
                let _ = writer.flush();
            }
            Sink::Otlp(logger) => {
                let mut record = logger.create_log_record();
                record.set_timestamp(std::time::SystemTime::now());
                record.set_severity_number(opentelemetry::logs::Severity::Info);
                record.set_severity_text("INFO");
                record.set_event_name(if kind == "audit" {
                    "paved.audit"
                } else {
                    "paved.billing"
                });
                record.set_body(AnyValue::from(
                    fields
                        .get("action")
                        .and_then(Value::as_str)
                        .unwrap_or(kind)
                        .to_owned(),
                ));
                record.add_attribute("paved.kind", kind);
                if let Some(trace) = fields
                    .get("trace_id")
                    .and_then(Value::as_str)
                    .and_then(|t| opentelemetry::trace::TraceId::from_hex(t).ok())
                {
                    record.set_trace_context(trace, opentelemetry::trace::SpanId::INVALID, None);
                }
                for (key, value) in fields {
                    let value = match value {
                        Value::String(s) => AnyValue::from(s),
                        Value::Number(n) if n.is_i64() => AnyValue::from(n.as_i64().unwrap_or(0)),
                        Value::Bool(b) => AnyValue::from(b),
                        other => AnyValue::from(other.to_string()),
                    };
                    record.add_attribute(format!("paved.{key}"), value);
                }
                logger.emit(record);
            }
        }
    }
}
