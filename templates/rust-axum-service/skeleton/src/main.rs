use ${{ values.name | replace('-', '_') }}::{Config, app, telemetry};

use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = telemetry::init(env!("CARGO_PKG_NAME"));
    let config = Config::from_env();
    if let Err(reason) = config.key.load() {
        tracing::warn!(%reason, "/v1/summarize answers 503 until the LLM gateway key is there");
    }
    let listener = TcpListener::bind(&config.listen).await?;
    tracing::info!(
        address = %config.listen,
        gateway = %config.gateway_url,
        model = %config.model,
        "listening"
    );
    axum::serve(listener, app(&config)?)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    telemetry.shutdown();
    Ok(())
}

/// Ctrl-C, or SIGTERM from Kubernetes.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
