//! `paved`: the portal's server binary.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

// Rendering pages allocates many small strings; mimalloc handles that better than glibc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("PAVED_LOG")
                .unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn,sqlx=warn")),
        )
        .init();
    let config = match paved_core::config::Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("paved: {err}");
            return ExitCode::from(2);
        }
    };
    match paved_server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("paved: {err}");
            ExitCode::FAILURE
        }
    }
}
