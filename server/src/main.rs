//! `paved`: the portal's server binary.

use std::process::ExitCode;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

// Rendering pages allocates many small strings; mimalloc handles that better than glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Errors created and handled inside libraries (regorus evaluates policies
    // with anyhow errors) must not each capture a backtrace, which costs more
    // than the evaluation: panics still honour RUST_BACKTRACE.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `paved policy …`: the policy CLI, offline, without the server's configuration.
    if args.first().map(String::as_str) == Some("policy") {
        return policy_cli(&args[1..]);
    }
    // `paved migrate`: applies the database's migrations and exits.
    if args.first().map(String::as_str) == Some("migrate") {
        return migrate_cli(&args[1..]);
    }
    serve()
}

/// `paved migrate`: opens `PAVED_DATABASE_URL` (the only setting it reads;
/// SQLite or PostgreSQL), applies the migrations it lacks and exits, so that
/// an upgrade migrates once before the new version starts. Exit 0 done, 1
/// failed, 2 misused.
fn migrate_cli(args: &[String]) -> ExitCode {
    if !args.is_empty() {
        eprintln!("usage: paved migrate   (reads PAVED_DATABASE_URL; takes no arguments)");
        return ExitCode::from(2);
    }
    let url = match paved_core::config::migration_url(|name| std::env::var(name).ok()) {
        Ok(url) => url,
        Err(e) => {
            eprintln!("paved migrate: {}: {}", e.var, e.message);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("paved migrate: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(paved_core::db::migrate_only(&url)) {
        Ok(m) if m.after == m.before => {
            println!(
                "paved migrate: the database is up to date ({} migrations)",
                m.after
            );
            ExitCode::SUCCESS
        }
        Ok(m) => {
            println!(
                "paved migrate: applied {} migrations ({} in all)",
                m.after - m.before,
                m.after
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "paved migrate: the database at PAVED_DATABASE_URL could not be migrated: {e}"
            );
            ExitCode::FAILURE
        }
    }
}

/// `paved policy test|verify`: conftest's and gator's conventions on Paved's engine.
fn policy_cli(args: &[String]) -> ExitCode {
    let fetch = |url: &str| -> Result<String, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let mut request = reqwest::Client::new().get(url);
            // A portal token for a bundle that needs one.
            if let Ok(token) = std::env::var("PAVED_TOKEN") {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("HTTP {status}"));
            }
            response.text().await.map_err(|e| e.to_string())
        })
    };
    let mut stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    let mut io = paved_policy::cli::Io {
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
        fetch: &fetch,
    };
    let code = paved_policy::cli::main(args, &mut io);
    ExitCode::from(u8::try_from(code).unwrap_or(3))
}

#[tokio::main]
async fn serve() -> ExitCode {
    // rustify logs every Vault 404 as an error; Paved logs classified Vault errors itself.
    // Audit and billing events go to the audit export, not the log.
    let quiet = |f: EnvFilter| {
        ["paved::audit=off", "paved::billing=off"]
            .iter()
            .filter_map(|d| d.parse().ok())
            .fold(f, EnvFilter::add_directive)
    };
    let filter = quiet(
        EnvFilter::try_from_env("PAVED_LOG")
            .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,sqlx=warn,rustify=off")),
    );
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
    // The audit log and billing events: OTLP logs, or JSON lines on PAVED_AUDIT_SINK.
    let (audit, audit_provider) = match paved_server::audit_export::AuditExport::from_env() {
        Ok(Some((layer, provider))) => (Some(layer.layer()), provider),
        Ok(None) => (None, None),
        Err(err) => {
            eprintln!("paved: {err}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_filter(filter))
        .with(otel)
        .with(audit)
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
    if let Some(provider) = audit_provider {
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
