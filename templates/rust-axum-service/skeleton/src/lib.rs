//! The `${{ values.name }}` service: summarizes text with an LLM reached
//! through the Paved platform gateway; see `README.md`.

pub mod config;
pub mod llm;
pub mod routes;
pub mod telemetry;
pub mod trace_context;

pub use config::Config;
pub use routes::{AppState, router};

/// The whole service for `config`.
pub fn app(config: &Config) -> Result<axum::Router, reqwest::Error> {
    Ok(router(AppState {
        gateway: llm::GatewayClient::new(config)?,
    }))
}
