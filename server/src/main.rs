//! `paved`: the portal's server binary.

use std::process::ExitCode;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

// Rendering pages allocates many small strings; mimalloc handles that better than glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // rustify logs every Vault 404 as an error; Paved logs classified Vault errors itself.
    let filter = EnvFilter::try_from_env("PAVED_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,sqlx=warn,rustify=off"));
    // Spans go to an OTLP collector when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    let tracer = match paved_server::telemetry::otlp_tracer_from_env() {
        Ok(tracer) => tracer,
        Err(err) => {
            eprintln!("paved: {err}");
            return ExitCode::from(2);
        }
    };
    let otel = tracer.as_ref().map(|(_, tracer)| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer.clone())
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("paved_core::gateway", tracing::Level::INFO),
            )
    });
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_filter(filter))
        .with(otel)
        .init();
    let config = match paved_core::config::Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("paved: {err}");
            return ExitCode::from(2);
        }
    };
    let result = paved_server::run(config).await;
    if let Some((provider, _)) = tracer {
        // Send the last spans before exiting.
        let _ = provider.shutdown();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("paved: {err}");
            ExitCode::FAILURE
        }
    }
}
