//! The gateway's settings (`PAVED_LLM_*`, `PAVED_BUDGET_*`) and the upstreams
//! file named by `PAVED_LLM_UPSTREAMS`: which deployments serve each model
//! (provider, API, base URL, credential from Vault, weight, priority, limits),
//! and where a request goes when they fail or the prompt is too long.
//!
//! ```yaml
//! models:
//!   - model: gpt-4o-mini            # one deployment, written inline
//!     provider: openai              # price table and metrics label
//!     base_url: https://api.openai.com/v1
//!     credential: llm/_platform     # Vault path under PAVED_VAULT_PREFIX (platform-wide key)
//!     credential_key: openai        # field in that secret (default: the provider)
//!     type: chat                    # chat (default) or embeddings
//!     max_output_tokens: 16384      # worst case when a request sets no max_tokens
//!     upstream_model: gpt-4o-mini   # name sent upstream (default: model)
//!   - model: chat-default           # several deployments
//!     context_window: 128000        # prompt tokens the model takes
//!     deployments:
//!       - name: east
//!         provider: openai
//!         base_url: https://east.example.com/v1
//!         upstream_model: gpt-4o-mini
//!         weight: 3                 # share of traffic among the same priority
//!         priority: 0               # lower first; higher ones only when these fail
//!         rpm: 600                  # per-deployment limits (skipped when reached)
//!         tpm: 200000
//!       - name: anthropic
//!         provider: anthropic
//!         api: anthropic            # Anthropic's Messages API (translated)
//!         base_url: https://api.anthropic.com
//!         upstream_model: claude-haiku-4-5
//!     fallbacks: [claude-sonnet-4-5]          # other models, after every deployment failed
//!     context_window_fallbacks: [gpt-4.1]     # when the prompt is too long
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
    /// `POST /chat/completions` (and `/responses`, and Anthropic's `/messages`).
    Chat,
    /// `POST /embeddings`.
    Embeddings,
}

/// The API a deployment speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// OpenAI's (chat completions, responses, embeddings): OpenAI, Azure
    /// OpenAI, vLLM, Ollama, LiteLLM…
    Openai,
    /// Anthropic's Messages API (`{base_url}/v1/messages`).
    Anthropic,
}

impl Api {
    /// The label in spans and pages.
    pub fn name(self) -> &'static str {
        match self {
            Api::Openai => "openai",
            Api::Anthropic => "anthropic",
        }
    }
}

/// One place a model is served: a provider, region or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// `model` for a model with one deployment, else `model/name`: the
    /// circuit breaker's and the usage record's name for it.
    pub id: String,
    /// The provider (metrics label and price key).
    pub provider: String,
    /// Which API it speaks.
    pub api: Api,
    /// Base URL without a trailing slash (`…/v1` for OpenAI's API, the host
    /// for Anthropic's).
    pub base_url: String,
    /// Vault path (under the prefix) of the platform-wide credential.
    pub credential: Option<String>,
    /// The field holding the key.
    pub credential_key: String,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// The price table's model for this deployment.
    pub price_model: String,
    /// Relative share of traffic among deployments of the same priority.
    pub weight: u32,
    /// Lower is tried first.
    pub priority: u32,
    /// Requests per minute this deployment takes.
    pub rpm: Option<u32>,
    /// Tokens (worst case) per minute this deployment takes.
    pub tpm: Option<u64>,
    /// Host, for span attributes.
    pub server_address: String,
    /// Port, for span attributes.
    pub server_port: u16,
}

/// Where one model goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRoute {
    /// The name callers use.
    pub model: String,
    /// Chat or embeddings.
    pub kind: ModelKind,
    /// Output tokens assumed when a request sets no limit.
    pub max_output_tokens: i64,
    /// Prompt tokens the model accepts, when known.
    pub context_window: Option<i64>,
    /// At least one.
    pub deployments: Vec<Deployment>,
    /// Models tried, in order, after every deployment failed.
    pub fallbacks: Vec<String>,
    /// Models tried when the prompt is too long for this one.
    pub context_window_fallbacks: Vec<String>,
}

impl ModelRoute {
    /// The provider of its first deployment (labels where one is needed).
    pub fn provider(&self) -> &str {
        self.deployments.first().map_or("", |d| d.provider.as_str())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDeployment {
    name: Option<String>,
    provider: Option<String>,
    api: Option<Api>,
    base_url: Option<String>,
    credential: Option<String>,
    credential_key: Option<String>,
    upstream_model: Option<String>,
    price_model: Option<String>,
    weight: Option<u32>,
    priority: Option<u32>,
    rpm: Option<u32>,
    tpm: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileModel {
    model: String,
    provider: Option<String>,
    api: Option<Api>,
    base_url: Option<String>,
    credential: Option<String>,
    credential_key: Option<String>,
    upstream_model: Option<String>,
    price_model: Option<String>,
    rpm: Option<u32>,
    tpm: Option<u64>,
    #[serde(rename = "type")]
    kind: Option<ModelKind>,
    max_output_tokens: Option<i64>,
    context_window: Option<i64>,
    deployments: Option<Vec<FileDeployment>>,
    #[serde(default)]
    fallbacks: Vec<String>,
    #[serde(default)]
    context_window_fallbacks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    models: Vec<FileModel>,
}

fn deployment(
    model: &str,
    d: FileDeployment,
    single: bool,
    at: &dyn Fn(&str) -> String,
) -> Result<Deployment, String> {
    let provider = d
        .provider
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| at("provider is required"))?;
    let base_url = d.base_url.ok_or_else(|| at("base_url is required"))?;
    let url = Url::parse(&base_url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| at("base_url must be an http(s) URL such as https://api.openai.com/v1"))?;
    if let Some(path) = &d.credential {
        if path.starts_with('/') || path.split('/').any(|s| s == ".." || s.is_empty()) {
            return Err(at(
                "credential must be a relative Vault path such as llm/_platform",
            ));
        }
    }
    let name = match (single, d.name) {
        (_, Some(n)) if !valid_name(&n) => {
            return Err(at(
                "a deployment's name must be 1–64 letters, digits, '.', '_' or '-'",
            ))
        }
        (true, _) => None,
        (false, None) => return Err(at("every deployment needs a name")),
        (false, Some(n)) => Some(n),
    };
    let upstream_model = d.upstream_model.unwrap_or_else(|| model.to_owned());
    let weight = d.weight.unwrap_or(1);
    if weight == 0 || weight > 1_000_000 {
        return Err(at("weight must be 1–1000000"));
    }
    if d.rpm == Some(0) || d.tpm == Some(0) {
        return Err(at("rpm and tpm must be positive when set"));
    }
    Ok(Deployment {
        id: name.map_or_else(|| model.to_owned(), |n| format!("{model}/{n}")),
        credential_key: d.credential_key.unwrap_or_else(|| provider.clone()),
        api: d.api.unwrap_or(Api::Openai),
        base_url: base_url.trim_end_matches('/').to_owned(),
        credential: d.credential,
        // One inline deployment keeps the historical price key (the caller's
        // name); named deployments are priced as the model they send.
        price_model: d.price_model.unwrap_or_else(|| {
            if single {
                model.to_owned()
            } else {
                upstream_model.clone()
            }
        }),
        upstream_model,
        provider,
        weight,
        priority: d.priority.unwrap_or(0),
        rpm: d.rpm,
        tpm: d.tpm,
        server_address: url.host_str().unwrap_or_default().to_owned(),
        server_port: url.port_or_known_default().unwrap_or(443),
    })
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Parses the upstreams file, naming the entry at fault.
pub fn parse_upstreams(yaml: &str) -> Result<BTreeMap<String, ModelRoute>, String> {
    let file: File = serde_yaml::from_str(yaml).map_err(|e| format!("is not valid: {e}"))?;
    let mut routes = BTreeMap::new();
    for (i, m) in file.models.into_iter().enumerate() {
        let name = m.model.clone();
        let at = |msg: &str| format!("models[{i}] ({name}): {msg}");
        if m.model.trim().is_empty() {
            return Err(at("model is required"));
        }
        let max_output_tokens = m.max_output_tokens.unwrap_or(4096);
        if max_output_tokens <= 0 {
            return Err(at("max_output_tokens must be positive"));
        }
        if m.context_window.is_some_and(|w| w <= 0) {
            return Err(at("context_window must be positive"));
        }
        let inline = FileDeployment {
            name: None,
            provider: m.provider,
            api: m.api,
            base_url: m.base_url,
            credential: m.credential,
            credential_key: m.credential_key,
            upstream_model: m.upstream_model,
            price_model: m.price_model,
            weight: None,
            priority: None,
            rpm: m.rpm,
            tpm: m.tpm,
        };
        let inline_set = inline.provider.is_some() || inline.base_url.is_some();
        let deployments = match m.deployments {
            Some(list) => {
                if inline_set {
                    return Err(at(
                        "give either provider/base_url inline or a deployments list, not both",
                    ));
                }
                if list.is_empty() {
                    return Err(at("deployments must list at least one"));
                }
                let mut out: Vec<Deployment> = Vec::with_capacity(list.len());
                for (j, d) in list.into_iter().enumerate() {
                    let at_j = |msg: &str| at(&format!("deployments[{j}]: {msg}"));
                    let d = deployment(&m.model, d, false, &at_j)?;
                    if out.iter().any(|o| o.id == d.id) {
                        return Err(at_j("two deployments share this name"));
                    }
                    out.push(d);
                }
                out
            }
            None => vec![deployment(&m.model, inline, true, &at)?],
        };
        let kind = m.kind.unwrap_or(ModelKind::Chat);
        if kind == ModelKind::Embeddings && deployments.iter().any(|d| d.api == Api::Anthropic) {
            return Err(at("Anthropic's API has no embeddings"));
        }
        let route = ModelRoute {
            model: m.model.clone(),
            kind,
            max_output_tokens,
            context_window: m.context_window,
            deployments,
            fallbacks: m.fallbacks,
            context_window_fallbacks: m.context_window_fallbacks,
        };
        if routes.insert(m.model.clone(), route).is_some() {
            return Err(format!("model {} is listed twice", m.model));
        }
    }
    // Fallbacks name configured models of the same kind, never themselves.
    for route in routes.values() {
        for other in route
            .fallbacks
            .iter()
            .chain(&route.context_window_fallbacks)
        {
            match routes.get(other) {
                None => {
                    return Err(format!(
                        "model {}: fallback {other} is not a configured model",
                        route.model
                    ))
                }
                Some(o) if o.kind != route.kind => {
                    return Err(format!(
                        "model {}: fallback {other} is not the same type of model",
                        route.model
                    ))
                }
                Some(_) if other == &route.model => {
                    return Err(format!("model {} falls back to itself", route.model))
                }
                Some(_) => {}
            }
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
    /// `PAVED_LLM_CACHE_MAX_BYTES` (default 64 MiB): the response cache's size.
    pub cache_max_bytes: usize,
    /// `PAVED_BUDGET_ALERT_WEBHOOK`: soft-threshold alerts are POSTed here.
    pub alert_webhook: Option<Url>,
    /// `PAVED_LLM_CREDENTIAL_TTL_SECS` (default 60): provider keys are re-read after this.
    pub credential_ttl: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_inline_deployment_keeps_the_historical_names() {
        let routes = parse_upstreams(
            "models:\n  - { model: gpt-4o-mini, provider: openai, base_url: 'https://api.openai.com/v1/', credential: llm/_platform }\n",
        )
        .unwrap();
        let r = &routes["gpt-4o-mini"];
        assert_eq!(r.deployments.len(), 1);
        let d = &r.deployments[0];
        assert_eq!(d.id, "gpt-4o-mini");
        assert_eq!(d.price_model, "gpt-4o-mini");
        assert_eq!(d.base_url, "https://api.openai.com/v1");
        assert_eq!(d.api, Api::Openai);
        assert_eq!(d.credential_key, "openai");
    }

    #[test]
    fn deployments_fallbacks_and_context_windows() {
        let yaml = r#"
models:
  - model: chat
    context_window: 1000
    deployments:
      - { name: east, provider: openai, base_url: "http://e/v1", upstream_model: gpt-4o-mini, weight: 3, rpm: 10 }
      - { name: claude, provider: anthropic, api: anthropic, base_url: "http://a", upstream_model: claude-haiku-4-5, priority: 1 }
    fallbacks: [big]
    context_window_fallbacks: [big]
  - { model: big, provider: openai, base_url: "http://b/v1", context_window: 100000 }
"#;
        let routes = parse_upstreams(yaml).unwrap();
        let chat = &routes["chat"];
        assert_eq!(chat.deployments[0].id, "chat/east");
        assert_eq!(chat.deployments[0].price_model, "gpt-4o-mini");
        assert_eq!(chat.deployments[0].weight, 3);
        assert_eq!(chat.deployments[0].rpm, Some(10));
        assert_eq!(chat.deployments[1].api, Api::Anthropic);
        assert_eq!(chat.deployments[1].priority, 1);
        assert_eq!(chat.fallbacks, vec!["big".to_owned()]);
        assert_eq!(chat.context_window, Some(1000));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("models:\n  - { model: a, provider: openai, base_url: 'ftp://x' }\n", "base_url"),
            ("models:\n  - { model: a, provider: openai, base_url: 'http://x', fallbacks: [b] }\n", "fallback b is not a configured model"),
            ("models:\n  - { model: a, provider: openai, base_url: 'http://x', fallbacks: [a] }\n", "falls back to itself"),
            ("models:\n  - { model: a, deployments: [{ provider: openai, base_url: 'http://x' }] }\n", "needs a name"),
            ("models:\n  - { model: a, deployments: [{ name: x, provider: openai, base_url: 'http://x' }, { name: x, provider: openai, base_url: 'http://y' }] }\n", "share this name"),
            ("models:\n  - { model: a, deployments: [] }\n", "at least one"),
            ("models:\n  - { model: a, provider: openai, base_url: 'http://x', deployments: [{ name: x, provider: openai, base_url: 'http://x' }] }\n", "not both"),
            ("models:\n  - { model: a, deployments: [{ name: x, provider: openai, base_url: 'http://x', weight: 0 }] }\n", "weight"),
            ("models:\n  - { model: e, type: embeddings, provider: anthropic, api: anthropic, base_url: 'http://x' }\n", "no embeddings"),
            ("models:\n  - { model: a, provider: openai, base_url: 'http://x', colour: red }\n", "colour"),
            ("models:\n  - { model: a, provider: openai, base_url: 'http://x' }\n  - { model: e, type: embeddings, provider: openai, base_url: 'http://x' }\n  - { model: b, provider: openai, base_url: 'http://x', fallbacks: [e] }\n", "same type"),
        ];
        for (yaml, expected) in cases {
            let err = parse_upstreams(yaml).unwrap_err();
            assert!(err.contains(expected), "{yaml}: {err}");
        }
    }
}
