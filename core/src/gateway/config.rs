//! The gateway's settings (`PAVED_LLM_*`, `PAVED_BUDGET_*`) and the upstreams
//! file named by `PAVED_LLM_UPSTREAMS`: which provider serves each model, at
//! which OpenAI-compatible base URL, with which credential from Vault.
//!
//! ```yaml
//! models:
//!   - model: gpt-4o-mini            # what callers ask for
//!     provider: openai              # price table and metrics label
//!     base_url: https://api.openai.com/v1
//!     credential: llm/_platform     # Vault path under PAVED_VAULT_PREFIX (platform-wide key)
//!     credential_key: openai        # field in that secret (default: the provider)
//!     type: chat                    # chat (default) or embeddings
//!     max_output_tokens: 16384      # worst case when a request sets no max_tokens
//!     upstream_model: gpt-4o-mini   # name sent upstream (default: model)
//! ```
//!
//! A team's own key at `{prefix}/llm/{team}` (field `credential_key`) wins over the platform-wide one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// What a model is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// `POST /chat/completions`.
    Chat,
    /// `POST /embeddings`.
    Embeddings,
}

/// Where one model goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRoute {
    /// The name callers use.
    pub model: String,
    /// The provider (label and price key).
    pub provider: String,
    /// OpenAI-compatible base URL, without a trailing slash (`…/v1`).
    pub base_url: String,
    /// Vault path (under the prefix) of the platform-wide credential.
    pub credential: Option<String>,
    /// The field holding the key.
    pub credential_key: String,
    /// Chat or embeddings.
    pub kind: ModelKind,
    /// Output tokens assumed when a request sets no limit.
    pub max_output_tokens: i64,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// Host and port, for span attributes.
    pub server_address: String,
    /// Port, for span attributes.
    pub server_port: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileModel {
    model: String,
    provider: String,
    base_url: String,
    credential: Option<String>,
    credential_key: Option<String>,
    #[serde(rename = "type")]
    kind: Option<ModelKind>,
    max_output_tokens: Option<i64>,
    upstream_model: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    models: Vec<FileModel>,
}

/// Parses the upstreams file, naming the entry at fault.
pub fn parse_upstreams(yaml: &str) -> Result<BTreeMap<String, ModelRoute>, String> {
    let file: File = serde_yaml::from_str(yaml).map_err(|e| format!("is not valid: {e}"))?;
    let mut routes = BTreeMap::new();
    for (i, m) in file.models.into_iter().enumerate() {
        let at = |msg: &str| format!("models[{i}] ({}): {msg}", m.model);
        if m.model.trim().is_empty() || m.provider.trim().is_empty() {
            return Err(at("model and provider are required"));
        }
        let url = Url::parse(&m.base_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                at("base_url must be an http(s) URL such as https://api.openai.com/v1")
            })?;
        if let Some(path) = &m.credential {
            if path.starts_with('/') || path.split('/').any(|s| s == ".." || s.is_empty()) {
                return Err(at(
                    "credential must be a relative Vault path such as llm/_platform",
                ));
            }
        }
        let max_output_tokens = m.max_output_tokens.unwrap_or(4096);
        if max_output_tokens <= 0 {
            return Err(at("max_output_tokens must be positive"));
        }
        let route = ModelRoute {
            model: m.model.clone(),
            credential_key: m.credential_key.unwrap_or_else(|| m.provider.clone()),
            provider: m.provider,
            base_url: m.base_url.trim_end_matches('/').to_owned(),
            credential: m.credential,
            kind: m.kind.unwrap_or(ModelKind::Chat),
            max_output_tokens,
            upstream_model: m.upstream_model.unwrap_or_else(|| m.model.clone()),
            server_address: url.host_str().unwrap_or_default().to_owned(),
            server_port: url.port_or_known_default().unwrap_or(443),
        };
        if routes.insert(m.model.clone(), route).is_some() {
            return Err(format!("model {} is listed twice", m.model));
        }
    }
    Ok(routes)
}

/// The gateway's settings.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// `PAVED_LLM_UPSTREAMS` (parsed): model → route.
    pub routes: BTreeMap<String, ModelRoute>,
    /// `PAVED_BUDGET_TIMEZONE` (default UTC): where periods start.
    pub time_zone: String,
    /// `PAVED_LLM_RESERVATION_TTL_SECS` (default 600): how long a hold outlives a crash.
    pub reservation_ttl: Duration,
    /// `PAVED_LLM_TIMEOUT_SECS` (default 120): per upstream attempt.
    pub timeout: Duration,
    /// `PAVED_LLM_MAX_RETRIES` (default 2; 0 allowed).
    pub max_retries: u32,
    /// `PAVED_LLM_RETRY_BASE_MS` (default 500) and `PAVED_LLM_RETRY_CAP_MS` (default 8000).
    pub retry_base: Duration,
    /// The backoff cap.
    pub retry_cap: Duration,
    /// `PAVED_LLM_BREAKER_FAILURES` (default 5 consecutive failures).
    pub breaker_failures: u32,
    /// `PAVED_LLM_BREAKER_COOLDOWN_MS` (default 30000; doubles per re-opening up to 10×).
    pub breaker_cooldown: Duration,
    /// `PAVED_LLM_MAX_BODY_BYTES` (default 4 MiB).
    pub max_body_bytes: usize,
    /// `PAVED_BUDGET_ALERT_WEBHOOK`: soft-threshold alerts are POSTed here.
    pub alert_webhook: Option<Url>,
    /// `PAVED_LLM_CREDENTIAL_TTL_SECS` (default 60): provider keys are re-read after this.
    pub credential_ttl: Duration,
}
