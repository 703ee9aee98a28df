//! The platform LLM gateway: an OpenAI-compatible proxy that authenticates
//! gateway keys, enforces team budgets through the two-phase ledger
//! (reserve the worst case, settle to actual usage, void on failure),
//! replays idempotent requests, retries with full jitter, trips circuit
//! breakers, and records metrics, spans and one usage record per request.
//! The HTTP layer (`server`) turns a [`Reply`] into a response.

pub mod anthropic;
pub mod breaker;
pub mod cache;
pub mod config;
pub mod guardrails;
pub mod metrics;
pub mod retry;
pub mod routing;
pub mod settings;
mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;
use tracing::field::Empty;
use tracing::Instrument;

use crate::budgets::keys::KeyIdentity;
use crate::budgets::ledger::{
    Clock, Hold, LedgerError, Replay, ReserveRequest, SoftAlert, StoredResponse, UsageRecord,
};
use crate::budgets::money::{Price, NANOCENTS_PER_CENT};
use crate::budgets::Budgets;
use crate::config::Config;
use crate::secrets::vault::Vault;
use breaker::{Breakers, Permit};
use config::{Api, Deployment, ModelKind, ModelRoute};
use metrics::GatewayMetrics;

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// What a caller asked the gateway to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /llm/v1/chat/completions`.
    Chat,
    /// `POST /llm/v1/embeddings`.
    Embeddings,
    /// `POST /llm/v1/responses` (OpenAI's Responses API).
    Responses,
    /// `POST /llm/anthropic/v1/messages` (Anthropic's Messages API).
    Messages,
}

impl Operation {
    /// The `request_type` label and the usage record's type.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
            Operation::Responses => "responses",
            Operation::Messages => "messages",
        }
    }

    /// `gen_ai.operation.name` (OpenTelemetry's GenAI conventions).
    pub fn otel_name(self) -> &'static str {
        match self {
            Operation::Embeddings => "embeddings",
            _ => "chat",
        }
    }

    /// The kind of model it needs.
    pub fn kind(self) -> ModelKind {
        match self {
            Operation::Embeddings => ModelKind::Embeddings,
            _ => ModelKind::Chat,
        }
    }

    /// Whether a deployment speaking `api` can serve it (chat completions
    /// are translated for Anthropic; the other APIs pass through as they are).
    pub fn served_by(self, api: Api) -> bool {
        match self {
            Operation::Chat => true,
            Operation::Embeddings | Operation::Responses => api == Api::Openai,
            Operation::Messages => api == Api::Anthropic,
        }
    }
}

/// One call as the HTTP layer received it.
#[derive(Debug, Clone)]
pub struct Call {
    /// Chat or embeddings.
    pub operation: Operation,
    /// The raw JSON body.
    pub body: Bytes,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The caller's W3C `traceparent`.
    pub traceparent: Option<String>,
    /// The caller's W3C `tracestate`.
    pub tracestate: Option<String>,
    /// The `X-Paved-Feature` header: the product feature the call serves.
    pub feature: Option<String>,
    /// Anthropic's `anthropic-version` header (Messages API callers).
    pub anthropic_version: Option<String>,
    /// Anthropic's `anthropic-beta` header (Messages API callers).
    pub anthropic_beta: Option<String>,
    /// The `Cache-Control` header: `max-age=N`, `no-cache`, `no-store`.
    pub cache_control: Option<String>,
}

/// The longest feature name a caller may send.
pub const MAX_FEATURE_LEN: usize = 64;

/// The product feature a call names: the `X-Paved-Feature` header, else the
/// body's `metadata.paved_feature` (OpenAI's `metadata` is a string map).
/// 1–64 letters, digits and `. _ - : /`, so it is safe in a metric label, a
/// span and a CSV cell; anything else is refused rather than mangled.
pub fn feature_of(header: Option<&str>, body: &Value) -> Result<Option<String>, String> {
    let raw = match header {
        Some(h) => Some(h),
        None => body
            .get("metadata")
            .and_then(|m| m.get("paved_feature"))
            .and_then(Value::as_str),
    };
    let Some(raw) = raw.map(str::trim) else {
        return Ok(None);
    };
    let ok = !raw.is_empty()
        && raw.len() <= MAX_FEATURE_LEN
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/'));
    if ok {
        Ok(Some(raw.to_owned()))
    } else {
        Err(format!(
            "X-Paved-Feature (or metadata.paved_feature) must be 1–{MAX_FEATURE_LEN} letters, digits, '.', '_', '-', ':' or '/'."
        ))
    }
}

/// A body to send back.
pub enum ReplyBody {
    /// A complete body.
    Full(Bytes),
    /// Server-sent events passed through as they arrive.
    Stream(BoxStream<'static, Result<Bytes, std::io::Error>>),
}

/// What the HTTP layer answers.
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Extra headers (budget, retry, trace).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: ReplyBody,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Reply {
    /// An OpenAI-style error: `{"error": {"message", "type", "code", "param"}}`.
    pub fn error(status: u16, kind: &str, message: impl Into<String>) -> Self {
        let body = json!({"error": {"message": message.into(), "type": kind, "code": kind, "param": null}});
        Self {
            status,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: ReplyBody::Full(Bytes::from(body.to_string())),
        }
    }

    fn with(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

/// W3C trace context of a call: the caller's trace id (or a new one).
#[derive(Debug, Clone)]
pub struct TraceContext {
    /// 32 hex digits.
    pub trace_id: String,
    /// The caller's span (16 hex digits), when it sent one.
    pub parent_span_id: Option<String>,
    /// Trace flags (`01` sampled).
    pub flags: String,
    /// The caller's `tracestate`, passed on.
    pub state: Option<String>,
    /// The gateway's own span id, when OpenTelemetry records it.
    pub own_span: Option<String>,
}

impl TraceContext {
    /// From a `traceparent` header when valid, else a fresh sampled trace.
    pub fn from_headers(traceparent: Option<&str>, tracestate: Option<&str>) -> Self {
        let parsed = traceparent.and_then(|tp| {
            let parts: Vec<&str> = tp.trim().split('-').collect();
            let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
            (parts.len() >= 4
                && hex(parts[0], 2)
                && parts[0] != "ff"
                && hex(parts[1], 32)
                && parts[1] != "0".repeat(32)
                && hex(parts[2], 16)
                && parts[2] != "0".repeat(16)
                && hex(parts[3], 2))
            .then(|| {
                (
                    parts[1].to_ascii_lowercase(),
                    Some(parts[2].to_ascii_lowercase()),
                    parts[3].to_owned(),
                )
            })
        });
        let (trace_id, parent_span_id, flags) = parsed.unwrap_or_else(|| {
            let mut id = [0u8; 16];
            rand::thread_rng().fill_bytes(&mut id);
            (hex::encode(id), None, "01".into())
        });
        Self {
            trace_id,
            parent_span_id,
            flags,
            state: tracestate.map(str::to_owned),
            own_span: None,
        }
    }

    /// Makes `span` a child of the caller's span (when OpenTelemetry is on),
    /// and adopts the span's trace id when the caller sent none.
    pub fn link(&mut self, span: &tracing::Span) {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
        };
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        if let (Ok(trace), Some(Ok(parent))) = (
            TraceId::from_hex(&self.trace_id),
            self.parent_span_id.as_deref().map(SpanId::from_hex),
        ) {
            let flags = u8::from_str_radix(&self.flags, 16).unwrap_or(1);
            let remote = SpanContext::new(
                trace,
                parent,
                TraceFlags::new(flags),
                true,
                TraceState::default(),
            );
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
        let cx = span.context();
        let own = cx.span().span_context().clone();
        if own.is_valid() {
            self.trace_id = own.trace_id().to_string();
            self.own_span = Some(own.span_id().to_string());
        }
    }

    /// A `traceparent` for the upstream call: same trace, the gateway's
    /// client span as parent (a fresh span id when OpenTelemetry is off).
    pub fn child(&self) -> String {
        if let Some(span) = &self.own_span {
            return format!("00-{}-{span}-{}", self.trace_id, self.flags);
        }
        let mut span = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut span);
        format!("00-{}-{}-{}", self.trace_id, hex::encode(span), self.flags)
    }
}

/// The gateway, built once at start-up.
pub struct Gateway {
    /// The budget ledger, prices and keys it checks and charges (shared with
    /// the budgets feature, which owns them).
    budgets: Arc<Budgets>,
    /// Circuit breakers.
    pub breakers: Breakers,
    /// Prometheus metrics.
    pub metrics: GatewayMetrics,
    config: Arc<Config>,
    vault: Option<Arc<Vault>>,
    pool: SqlitePool,
    http: reqwest::Client,
    /// Provider keys by (team, provider, Vault path, field).
    credentials: Mutex<HashMap<CredentialKey, CachedCredential>>,
    /// Per-deployment load, latency and per-minute limits.
    pub balancer: routing::Balancer,
    /// Each team's cache, guardrail and log settings.
    pub settings: settings::Settings,
    /// Answers kept for identical requests.
    cache: cache::Cache,
}

/// Which provider key: team, provider, platform-wide Vault path, field.
type CredentialKey = (String, String, Option<String>, String);

/// A provider key read from Vault (or its absence) and when; after a
/// rotation, the previous key until the new one has answered once.
#[derive(Clone)]
struct CachedCredential {
    current: Option<SecretString>,
    previous: Option<SecretString>,
    confirmed: bool,
    at: Instant,
}

/// The key to call with, and the one to fall back to while a newly rotated
/// key has not answered yet.
#[derive(Clone, Default)]
struct Credential {
    key: Option<SecretString>,
    previous: Option<SecretString>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("models", &self.config.llm.routes.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayStartError {
    /// The HTTP client could not be built.
    #[error("cannot build the upstream HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// The teams' gateway settings could not be read.
    #[error("cannot read the teams' gateway settings: {0}")]
    Settings(#[from] sqlx::Error),
}

struct Context {
    key: KeyIdentity,
    /// The model the caller asked for.
    route: ModelRoute,
    /// The model and deployment being tried (finally: the one that served).
    target: Candidate,
    /// Deployments tried so far.
    attempts: u32,
    /// What failed before the deployment that served, e.g. `m/east 429`.
    fallbacks: Vec<String>,
    operation: Operation,
    started: Instant,
    trace: TraceContext,
    idempotency: Option<(String, String)>,
    span: tracing::Span,
    /// The product feature the caller named.
    feature: Option<String>,
    /// The caller's `anthropic-version`, passed on to Anthropic.
    anthropic_version: Option<String>,
    /// The caller's `anthropic-beta`, passed on to Anthropic.
    anthropic_beta: Option<String>,
    /// The caller's `Cache-Control`.
    cache_control: Option<String>,
    /// The team's settings when the request arrived.
    team: Arc<settings::Team>,
    /// Guardrail findings, e.g. `prompt email:1 redacted`.
    guardrails: Vec<String>,
    /// Where to keep the answer, and for how long.
    cache: Option<(cache::Key, cache::Policy)>,
    /// What a cache hit saved.
    saved_nanocents: i64,
    /// The request log entry, when the team keeps one.
    log: Option<Box<crate::budgets::ledger::RequestLog>>,
}

impl Context {
    fn labels(&self) -> [&str; 5] {
        [
            &self.target.deployment.provider,
            &self.target.model,
            &self.key.team,
            &self.key.workspace,
            self.operation.name(),
        ]
    }
}

/// How a request ended, for metrics and the usage record.
struct Outcome {
    status: u16,
    error_type: Option<&'static str>,
    input_tokens: i64,
    output_tokens: i64,
    cost_nanocents: i64,
    upstream: Duration,
}

impl Outcome {
    /// A request that ended without charge.
    fn failed(status: u16, error_type: &'static str, upstream: Duration) -> Self {
        Self {
            status,
            error_type: Some(error_type),
            input_tokens: 0,
            output_tokens: 0,
            cost_nanocents: 0,
            upstream,
        }
    }
}

/// 503 `circuit_open` with the wait until the breaker lets a probe through.
fn circuit_open(target: &Candidate, wait: Duration) -> Reply {
    let seconds = wait.as_secs().max(1);
    Reply::error(
        503,
        "circuit_open",
        format!(
            "{} / {} is failing, so Paved paused requests to it; retry in {seconds} s.",
            target.deployment.provider, target.deployment.id
        ),
    )
    .with("retry-after", seconds.to_string())
}

/// One place a request may go: a model and one of its deployments, priced.
#[derive(Debug, Clone)]
struct Candidate {
    /// The model's name (the caller's, or a fallback's).
    model: String,
    /// Output tokens assumed when the request sets no limit.
    max_output_tokens: i64,
    deployment: Deployment,
    /// `None` while unpriced (such candidates are never called).
    price: Option<Price>,
}

impl Gateway {
    /// Seeds prices on first start, loads them and the ledger, and builds the
    /// upstream client. The hourly retention (key-age reminders, request
    /// logs, idempotency records) runs while `leader` leads the fleet.
    pub async fn start(
        pool: SqlitePool,
        config: Arc<Config>,
        vault: Option<Arc<Vault>>,
        budgets: Arc<Budgets>,
        clock: Arc<dyn Clock>,
        leader: paved_store::leader::Leadership,
    ) -> Result<Arc<Self>, GatewayStartError> {
        let config_cache_bytes = config.llm.cache_max_bytes;
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(512)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let team_settings = settings::Settings::load(&pool).await?;
        let gateway = Arc::new(Self {
            budgets,
            breakers: Breakers::new(config.llm.breaker_failures, config.llm.breaker_cooldown),
            metrics: GatewayMetrics::default(),
            config,
            vault,
            pool,
            http,
            credentials: Mutex::default(),
            balancer: routing::Balancer::default(),
            settings: team_settings,
            cache: cache::Cache::new(config_cache_bytes),
        });
        tokio::spawn(retention(gateway.pool.clone(), clock, leader));
        Ok(gateway)
    }

    /// The configured models.
    pub fn routes(&self) -> impl Iterator<Item = &ModelRoute> {
        self.config.llm.routes.values()
    }

    /// Whether some deployment of `route` has a price.
    pub fn is_priced(&self, route: &ModelRoute) -> bool {
        route.deployments.iter().any(|d| {
            self.budgets
                .prices
                .get(&d.provider, &d.price_model)
                .is_some()
        })
    }

    /// Models that are configured and priced (what a budget may allow).
    pub fn priced_models(&self) -> Vec<String> {
        self.routes()
            .filter(|r| self.is_priced(r))
            .map(|r| r.model.clone())
            .collect()
    }

    /// The body size limit for gateway requests.
    pub fn max_body_bytes(&self) -> usize {
        self.config.llm.max_body_bytes
    }

    /// Who a `Bearer` gateway key spends for, or a 401 reply.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Result<KeyIdentity, Reply> {
        let unauthorized = || {
            Reply::error(
                401,
                "invalid_api_key",
                "Send a Paved gateway key as `Authorization: Bearer pvg_…` (team leads create them on the team's Budget page).",
            )
        };
        let Some(token) = bearer else {
            return Err(unauthorized());
        };
        match self
            .budgets
            .keys
            .authenticate(&self.pool, token, self.budgets.ledger.now_ms())
            .await
        {
            Ok(Some(key)) => {
                // Last use is kept to the minute: one write per key and minute, not per request.
                let minute = crate::now_unix() / 60 * 60;
                if self.budgets.keys.note_use(key.id, minute) {
                    self.budgets.ledger.key_used(key.id, minute);
                }
                Ok(key)
            }
            Ok(None) => Err(unauthorized()),
            Err(e) => {
                tracing::error!(error = %e, "cannot read gateway keys");
                Err(Reply::error(
                    503,
                    "service_unavailable",
                    "Paved cannot check gateway keys right now; retry shortly.",
                ))
            }
        }
    }

    /// `GET /models`: the models this key may use.
    pub fn models_for(&self, key: &KeyIdentity) -> Reply {
        let data: Vec<Value> = self
            .routes()
            .filter(|r| self.is_priced(r))
            .filter(|r| {
                self.budgets
                    .ledger
                    .allows_model(&key.team, &key.workspace, &r.model)
            })
            .map(
                |r| json!({"id": r.model, "object": "model", "created": 0, "owned_by": r.provider()}),
            )
            .collect();
        Reply {
            status: 200,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: ReplyBody::Full(Bytes::from(
                json!({"object": "list", "data": data}).to_string(),
            )),
        }
    }

    /// Anthropic's `GET /v1/models`: the models this key may use through
    /// Anthropic's Messages API.
    pub fn anthropic_models_for(&self, key: &KeyIdentity) -> Reply {
        let data: Vec<Value> = self
            .routes()
            .filter(|r| r.deployments.iter().any(|d| d.api == Api::Anthropic))
            .filter(|r| self.is_priced(r))
            .filter(|r| {
                self.budgets
                    .ledger
                    .allows_model(&key.team, &key.workspace, &r.model)
            })
            .map(|r| {
                json!({"type": "model", "id": r.model, "display_name": r.model,
                       "created_at": "1970-01-01T00:00:00Z"})
            })
            .collect();
        let first = data.first().map(|m| m["id"].clone());
        let last = data.last().map(|m| m["id"].clone());
        Reply {
            status: 200,
            content_type: "application/json".into(),
            headers: Vec::new(),
            body: ReplyBody::Full(Bytes::from(
                json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
                    .to_string(),
            )),
        }
    }

    /// Handles one call for `key`.
    pub async fn handle(self: &Arc<Self>, key: KeyIdentity, call: Call) -> Reply {
        let started = Instant::now();
        let mut trace =
            TraceContext::from_headers(call.traceparent.as_deref(), call.tracestate.as_deref());
        let parsed: Value = match serde_json::from_slice(&call.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                return Reply::error(
                    400,
                    "invalid_request_error",
                    "The body must be a JSON object (an OpenAI-style request).",
                )
            }
        };
        let Some(model) = parsed.get("model").and_then(Value::as_str) else {
            return Reply::error(400, "invalid_request_error", "`model` is required.");
        };
        let feature = match feature_of(call.feature.as_deref(), &parsed) {
            Ok(f) => f,
            Err(message) => return Reply::error(400, "invalid_request_error", message),
        };
        let Some(route) = self.config.llm.routes.get(model).cloned() else {
            return Reply::error(
                404,
                "model_not_found",
                format!("The model `{model}` is not offered by this gateway; GET /llm/v1/models lists yours."),
            );
        };
        if route.kind != call.operation.kind() {
            return Reply::error(
                400,
                "invalid_request_error",
                format!("`{model}` is not a {} model.", call.operation.otel_name()),
            );
        }
        let Some(first) = route
            .deployments
            .iter()
            .find(|d| call.operation.served_by(d.api))
            .cloned()
        else {
            let api = match call.operation {
                Operation::Messages => "Anthropic's Messages API (POST /llm/anthropic/v1/messages); call it through /llm/v1/chat/completions",
                Operation::Responses => "the Responses API; call it through /llm/v1/chat/completions",
                _ => "this API",
            };
            return Reply::error(
                400,
                "invalid_request_error",
                format!("`{model}` is not served through {api}."),
            );
        };
        let target = Candidate {
            model: route.model.clone(),
            max_output_tokens: route.max_output_tokens,
            price: None,
            deployment: first,
        };
        let span = tracing::info_span!(
            "gen_ai",
            otel.name = %format!("{} {}", call.operation.otel_name(), model),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = call.operation.otel_name(),
            gen_ai.provider.name = %target.deployment.provider,
            gen_ai.request.model = %model,
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            llm.provider = %target.deployment.provider,
            llm.model = %model,
            llm.idempotency_key = Empty,
            llm.request_type = call.operation.name(),
            error.type = Empty,
            server.address = %target.deployment.server_address,
            server.port = target.deployment.server_port,
            trace_id = %trace.trace_id,
            paved.team = %key.team,
            paved.workspace_id = %key.workspace,
            paved.feature = feature.as_deref().unwrap_or(""),
            paved.deployment = Empty,
            paved.served_model = Empty,
            paved.attempts = Empty,
            paved.fallbacks = Empty,
            paved.guardrails = Empty,
            paved.cache = Empty,
            paved.vault_request_id = Empty,
        );
        trace.link(&span);
        let idempotency = match &call.idempotency_key {
            None => None,
            Some(k) if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_LEN => {
                return Reply::error(
                    400,
                    "invalid_request_error",
                    "Idempotency-Key must be 1–255 characters.",
                )
            }
            Some(k) => {
                span.record("llm.idempotency_key", k.as_str());
                Some((k.clone(), hex::encode(Sha256::digest(&call.body))))
            }
        };
        let team_settings = self.settings.of(&key.team);
        let ctx = Context {
            key,
            route,
            target,
            attempts: 0,
            fallbacks: Vec::new(),
            operation: call.operation,
            started,
            trace,
            idempotency,
            span: span.clone(),
            feature,
            anthropic_version: call.anthropic_version.filter(|v| valid_header_token(v)),
            anthropic_beta: call.anthropic_beta.filter(|v| valid_header_token(v)),
            cache_control: call.cache_control,
            team: team_settings,
            guardrails: Vec::new(),
            cache: None,
            saved_nanocents: 0,
            log: None,
        };
        self.clone()
            .run(ctx, parsed, call.body)
            .instrument(span)
            .await
    }

    fn refuse(&self, ctx: &Context, reply: Reply, error_type: &'static str) -> Reply {
        let record = self.finish(
            ctx,
            None,
            &Outcome::failed(reply.status, error_type, Duration::ZERO),
        );
        self.budgets.ledger.record(record);
        reply
    }

    /// One admitted request, in named steps: admit (model, idempotency,
    /// worst-case bounds) → plan the deployments to try (the model's by
    /// priority and weight, then its fallbacks) → for each: hold the worst
    /// case at its price (reserve, or grow the hold by the difference) →
    /// open the upstream (breaker, credential) → call → settle to the usage,
    /// or move on to the next on a failure another deployment may not have.
    async fn run(self: Arc<Self>, mut ctx: Context, mut parsed: Value, body: Bytes) -> Reply {
        let mut body_len = body.len();
        drop(body);
        if let Some(refused) = self.guard_prompt(&mut ctx, &mut parsed, &mut body_len) {
            return refused;
        }
        if ctx.team.settings.log_requests {
            ctx.log = Some(Box::new(crate::budgets::ledger::RequestLog {
                request_body: ctx
                    .team
                    .settings
                    .log_bodies
                    .then(|| settings::mask(&parsed.to_string())),
                response_body: None,
            }));
        }
        let streaming = parsed.get("stream") == Some(&Value::Bool(true));
        let policy = cache::Policy::of(
            ctx.cache_control.as_deref(),
            ctx.team.settings.cache_ttl_secs,
        );
        if policy.active()
            && !streaming
            && self
                .budgets
                .ledger
                .allows_model(&ctx.key.team, &ctx.key.workspace, &ctx.route.model)
        {
            let key = cache::key(
                &ctx.key.team,
                ctx.operation.name(),
                &ctx.route.model,
                &parsed,
            );
            if policy.lookup {
                if let Some(entry) = self.cache.get(&key, Instant::now(), policy.max_age) {
                    return self.cache_hit(ctx, &entry);
                }
            }
            self.metrics
                .cache
                .add(&[&ctx.key.team, &ctx.route.model, "miss"], 1.0);
            ctx.span.record("paved.cache", "miss");
            ctx.cache = Some((key, policy));
        }
        let admitted = match self.admit(&ctx, &parsed, body_len).await {
            Ok(a) => a,
            Err(early) => return early.reply(&self, &ctx),
        };
        let mut plan = match self.plan(&ctx, &admitted) {
            Ok(plan) => plan,
            Err(early) => return early.reply(&self, &ctx),
        };
        let mut hold: Option<Hold> = None;
        let mut last: Option<Failed> = None;
        let mut next = 0;
        while next < plan.len() {
            let candidate = plan[next].clone();
            next += 1;
            let is_last = next == plan.len();
            let Some(price) = candidate.price else {
                continue;
            };
            self.aim(&mut ctx, &candidate);
            let output_bound = admitted.output_bound(candidate.max_output_tokens);
            let worst = price.cost(admitted.input_bound, output_bound);
            let tokens = u64::try_from(admitted.input_bound.saturating_add(output_bound))
                .unwrap_or(u64::MAX);
            if !self.balancer.admit(
                &candidate.deployment,
                tokens,
                self.budgets.ledger.now_ms() / 1000,
            ) {
                ctx.fallbacks.push(format!(
                    "{} at its per-minute limit",
                    candidate.deployment.id
                ));
                last = Some(Failed::Busy);
                continue;
            }
            // The hold covers this deployment's worst case: reserved on the
            // first attempt, grown by the difference for a dearer fallback.
            let held = match hold.as_mut() {
                None => match self.reserve(&ctx, &admitted, worst).await {
                    Ok(h) => hold.insert(h),
                    Err(e) => return self.refusal(&ctx, e),
                },
                Some(h) => {
                    if let Err(e) = self.budgets.ledger.grow(h, worst).await {
                        // The fallback does not fit the budget: refuse rather than overspend.
                        let h = hold.take().expect("held");
                        self.void(&ctx, &h, 429, "budget_exceeded", Duration::ZERO);
                        return self.refusal_reply(e);
                    }
                    h
                }
            };
            let call = match UpstreamCall::new(&ctx, &candidate, &parsed, output_bound) {
                Ok(call) => call,
                Err(message) => {
                    ctx.fallbacks.push(format!(
                        "{} cannot take the request",
                        candidate.deployment.id
                    ));
                    last = Some(Failed::Untranslatable(message));
                    continue;
                }
            };
            let d = &candidate.deployment;
            let permit = match self.breakers.acquire(&d.provider, &d.id, Instant::now()) {
                Ok(p) => p,
                Err(wait) => {
                    ctx.fallbacks.push(format!("{} circuit open", d.id));
                    last = Some(Failed::CircuitOpen(wait));
                    continue;
                }
            };
            let credential = match self.credential(&ctx.key.team, d).await {
                Ok(c) => c,
                Err(message) => {
                    self.breakers.release(&d.provider, &d.id, permit);
                    ctx.fallbacks.push(format!("{} credential", d.id));
                    last = Some(Failed::Credential(message));
                    continue;
                }
            };
            let retries = if is_last {
                self.config.llm.max_retries
            } else {
                0
            };
            let started = Instant::now();
            let in_flight = self.balancer.start(d);
            let mut result = self
                .call_with_retries(
                    &ctx,
                    held,
                    &call,
                    permit,
                    credential.key.as_ref(),
                    output_bound,
                    retries,
                )
                .await;
            if let (Err(Attempts::Failed(f)), Some(previous)) = (&result, &credential.previous) {
                if matches!(f.status(), Some(401 | 403)) {
                    // A newly rotated key is refused: the previous one keeps serving.
                    tracing::warn!(deployment = %d.id, "the rotated provider key was refused; calling with the previous key");
                    if let Ok(permit) = self.breakers.acquire(&d.provider, &d.id, Instant::now()) {
                        result = self
                            .call_with_retries(
                                &ctx,
                                held,
                                &call,
                                permit,
                                Some(previous),
                                output_bound,
                                0,
                            )
                            .await;
                    }
                }
            } else if result.is_ok() {
                self.confirm_credential(&ctx.key.team, d);
            }
            drop(in_flight);
            match result {
                Ok(response) => {
                    self.balancer.observe(d, started.elapsed());
                    let hold = hold.take().expect("held");
                    let bounds = (admitted.input_bound, output_bound);
                    return self
                        .settle(ctx, hold, price, bounds, &call, response, started)
                        .await;
                }
                Err(Attempts::CircuitOpen(wait)) => {
                    ctx.fallbacks.push(format!("{} circuit open", d.id));
                    last = Some(Failed::CircuitOpen(wait));
                }
                Err(Attempts::Failed(UpstreamFailure::Timeout)) => {
                    // The provider may have run and billed it: this attempt
                    // costs its worst case; a next one needs a hold of its own.
                    let h = hold.take().expect("held");
                    self.charge(
                        &ctx,
                        &h,
                        price,
                        None,
                        (admitted.input_bound, output_bound),
                        504,
                        Some("timeout"),
                        started.elapsed(),
                        None,
                    );
                    ctx.fallbacks.push(format!("{} timeout", d.id));
                    last = Some(Failed::TimedOut);
                }
                Err(Attempts::Failed(failure)) => {
                    let status = failure.status();
                    if failure.context_too_long() {
                        ctx.fallbacks.push(format!("{} context window", d.id));
                        let longer = self.candidates_for(&ctx, &candidate.model, true, &admitted);
                        plan.truncate(next);
                        plan.extend(longer);
                    } else if !failure.falls_back() {
                        // The request itself was refused: another deployment would refuse it too.
                        let h = hold.take().expect("held");
                        return self.upstream_failed(&ctx, &h, failure, started.elapsed());
                    } else {
                        ctx.fallbacks.push(format!(
                            "{} {}",
                            d.id,
                            status.map_or("unreachable".to_owned(), |s| s.to_string())
                        ));
                    }
                    last = Some(Failed::Upstream(failure, started.elapsed()));
                }
            }
        }
        self.all_failed(&ctx, hold, last)
    }

    /// Applies the team's prompt guardrails: findings recorded (detector and
    /// count), matches redacted, or the request refused.
    fn guard_prompt(
        &self,
        ctx: &mut Context,
        parsed: &mut Value,
        body_len: &mut usize,
    ) -> Option<Reply> {
        let action = ctx.team.settings.guardrail_prompt;
        if action == settings::GuardAction::Off || ctx.team.detectors.is_empty() {
            return None;
        }
        let found = guard(
            parsed,
            &ctx.team.detectors,
            action == settings::GuardAction::Redact,
        );
        if found.is_empty() {
            return None;
        }
        self.note_guardrails(ctx, "prompt", action, &found);
        match action {
            settings::GuardAction::Block => {
                let reply = Reply::error(
                    400,
                    "guardrail_blocked",
                    format!(
                        "The prompt contains {}, which team {}'s guardrails keep from leaving Paved. Remove it and send the request again.",
                        describe(&found),
                        ctx.key.team
                    ),
                );
                Some(self.refuse(ctx, reply, "guardrail"))
            }
            settings::GuardAction::Redact => {
                // A placeholder may be longer than what it replaced.
                *body_len = (*body_len).max(parsed.to_string().len());
                None
            }
            _ => None,
        }
    }

    /// Records guardrail findings on the span, the metrics and the usage record.
    fn note_guardrails(
        &self,
        ctx: &mut Context,
        stage: &str,
        action: settings::GuardAction,
        found: &[guardrails::Match],
    ) {
        let verb = match action {
            settings::GuardAction::Block => "blocked",
            settings::GuardAction::Redact => "redacted",
            _ => "reported",
        };
        for m in found {
            self.metrics
                .guardrails
                .add(&[&ctx.key.team, m.detector.name(), stage, verb], 1.0);
        }
        ctx.guardrails
            .push(format!("{stage} {} {verb}", guardrails::summary(found)));
        ctx.span
            .record("paved.guardrails", ctx.guardrails.join("; ").as_str());
    }

    /// The team's response guardrails on a complete answer: findings
    /// recorded, matches redacted; `true` when the answer must be withheld.
    fn guard_response(&self, ctx: &mut Context, body: &mut Bytes) -> bool {
        let action = ctx.team.settings.guardrail_response;
        if action == settings::GuardAction::Off || ctx.team.detectors.is_empty() {
            return false;
        }
        let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
            return false;
        };
        let redact = action == settings::GuardAction::Redact;
        let found = guard(&mut value, &ctx.team.detectors, redact);
        if found.is_empty() {
            return false;
        }
        self.note_guardrails(ctx, "response", action, &found);
        if redact {
            *body = Bytes::from(value.to_string());
        }
        action == settings::GuardAction::Block
    }

    /// Answers from the cache: nothing reserved, nothing charged, the saving recorded.
    fn cache_hit(&self, mut ctx: Context, entry: &cache::Entry) -> Reply {
        ctx.saved_nanocents = entry.cost_nanocents;
        ctx.target.model = entry.model.clone();
        ctx.target.deployment.id = entry.deployment.clone();
        ctx.span.record("paved.cache", "hit");
        self.metrics
            .cache
            .add(&[&ctx.key.team, &ctx.route.model, "hit"], 1.0);
        self.metrics.cache_saved.add(
            &[&ctx.key.team],
            entry.cost_nanocents as f64 / NANOCENTS_PER_CENT as f64,
        );
        if let Some(log) = ctx.log.as_mut() {
            if ctx.team.settings.log_bodies {
                log.response_body = Some(settings::mask(&String::from_utf8_lossy(&entry.body)));
            }
        }
        let mut record = self.finish(
            &ctx,
            None,
            &Outcome {
                status: 200,
                error_type: None,
                input_tokens: 0,
                output_tokens: 0,
                cost_nanocents: 0,
                upstream: Duration::ZERO,
            },
        );
        record.cache_hit = true;
        record.saved_nanocents = entry.cost_nanocents;
        self.budgets.ledger.record(record);
        let age = entry.stored_at.elapsed().as_secs();
        let mut headers = served_headers(&ctx);
        headers.push(("x-paved-cache", "hit".into()));
        headers.push(("age", age.to_string()));
        Reply {
            status: 200,
            content_type: entry.content_type.clone(),
            headers,
            body: ReplyBody::Full(entry.body.clone()),
        }
    }

    /// Points the request at `candidate`: span, labels and the usage record follow.
    fn aim(&self, ctx: &mut Context, candidate: &Candidate) {
        ctx.attempts += 1;
        ctx.target = candidate.clone();
        let d = &candidate.deployment;
        ctx.span.record("paved.deployment", d.id.as_str());
        ctx.span
            .record("paved.served_model", candidate.model.as_str());
        ctx.span.record("paved.attempts", ctx.attempts);
        ctx.span.record("gen_ai.provider.name", d.provider.as_str());
        ctx.span.record("server.address", d.server_address.as_str());
        ctx.span.record("server.port", d.server_port);
        if !ctx.fallbacks.is_empty() {
            ctx.span
                .record("paved.fallbacks", ctx.fallbacks.join(", ").as_str());
        }
    }

    /// The answer when no deployment answered: the last failure, the hold voided.
    fn all_failed(&self, ctx: &Context, hold: Option<Hold>, last: Option<Failed>) -> Reply {
        let Some(last) = last else {
            // Nothing could be tried: no deployment is priced.
            return Refusal::ModelNotPriced.reply(self, ctx);
        };
        let (status, error_type, reply) = match last {
            Failed::Upstream(failure, upstream) => {
                return match hold {
                    Some(h) => self.upstream_failed(ctx, &h, failure, upstream),
                    None => self.upstream_reply(ctx, failure),
                };
            }
            Failed::TimedOut => (
                504,
                "timeout",
                Reply::error(
                    504,
                    "timeout",
                    format!(
                        "{} did not answer within {} s.",
                        ctx.target.deployment.provider,
                        self.config.llm.timeout.as_secs()
                    ),
                ),
            ),
            Failed::CircuitOpen(wait) => (503, "circuit_open", circuit_open(&ctx.target, wait)),
            Failed::Credential(message) => (
                502,
                "unauthorized",
                Reply::error(502, "upstream_credential_error", message),
            ),
            Failed::Untranslatable(message) => (
                400,
                "bad_request",
                Reply::error(400, "invalid_request_error", message),
            ),
            Failed::Busy => (
                429,
                "rate_limited",
                Reply::error(
                    429,
                    "rate_limit_exceeded",
                    format!(
                        "Every deployment of `{}` is at its per-minute limit; retry in a minute.",
                        ctx.route.model
                    ),
                )
                .with("retry-after", "60".into()),
            ),
        };
        match hold {
            Some(h) => self.void(ctx, &h, status, error_type, Duration::ZERO),
            None if status != 504 => {
                let record = self.finish(
                    ctx,
                    None,
                    &Outcome::failed(status, error_type, Duration::ZERO),
                );
                self.budgets.ledger.record(record);
            }
            // A timed-out attempt was charged and recorded already.
            None => {}
        }
        reply
    }

    /// The deployments to try, in order: the model's own (or, when the
    /// prompt is clearly too long for it, its context-window fallbacks'),
    /// then its fallbacks' — each by priority and weight, only those that
    /// speak the request's API, of models the team may use.
    fn plan(&self, ctx: &Context, admitted: &Admitted) -> Result<Vec<Candidate>, Refusal> {
        let route = &ctx.route;
        let too_long = route
            .context_window
            .is_some_and(|w| admitted.prompt_estimate > w)
            && !route.context_window_fallbacks.is_empty();
        let mut plan = if too_long {
            ctx.span.record("paved.fallbacks", "context window");
            self.candidates_for(ctx, &route.model, true, admitted)
        } else {
            self.candidates(ctx, route)
        };
        for fallback in &route.fallbacks {
            if let Some(r) = self.config.llm.routes.get(fallback) {
                if self
                    .budgets
                    .ledger
                    .allows_model(&ctx.key.team, &ctx.key.workspace, &r.model)
                {
                    plan.extend(self.candidates(ctx, r));
                }
            }
        }
        if plan.iter().all(|c| c.price.is_none()) {
            return Err(Refusal::ModelNotPriced);
        }
        Ok(plan)
    }

    /// `model`'s context-window fallbacks (with a larger or unknown window)
    /// when `longer`, as candidates.
    fn candidates_for(
        &self,
        ctx: &Context,
        model: &str,
        longer: bool,
        admitted: &Admitted,
    ) -> Vec<Candidate> {
        let Some(route) = self.config.llm.routes.get(model) else {
            return Vec::new();
        };
        if !longer {
            return self.candidates(ctx, route);
        }
        route
            .context_window_fallbacks
            .iter()
            .filter_map(|m| self.config.llm.routes.get(m))
            .filter(|r| {
                r.context_window
                    .is_none_or(|w| w >= admitted.prompt_estimate)
            })
            .filter(|r| {
                self.budgets
                    .ledger
                    .allows_model(&ctx.key.team, &ctx.key.workspace, &r.model)
            })
            .flat_map(|r| self.candidates(ctx, r))
            .collect()
    }

    /// One model's deployments that can serve the request, in the order to try them.
    fn candidates(&self, ctx: &Context, route: &ModelRoute) -> Vec<Candidate> {
        let usable: Vec<Deployment> = route
            .deployments
            .iter()
            .filter(|d| ctx.operation.served_by(d.api))
            .cloned()
            .collect();
        self.balancer
            .order(&usable, &mut rand::thread_rng())
            .into_iter()
            .map(|d| Candidate {
                model: route.model.clone(),
                max_output_tokens: route.max_output_tokens,
                price: self.budgets.prices.get(&d.provider, &d.price_model),
                deployment: d.clone(),
            })
            .collect()
    }

    /// Checks what needs no reservation: the model is allowed, an
    /// idempotency key is new (or its stored answer is replayed), the content
    /// can be bounded; and computes the worst case to reserve.
    async fn admit(
        &self,
        ctx: &Context,
        parsed: &Value,
        body_len: usize,
    ) -> Result<Admitted, Refusal> {
        let team = &ctx.key.team;
        if !self
            .budgets
            .ledger
            .allows_model(team, &ctx.key.workspace, &ctx.route.model)
        {
            return Err(Refusal::ModelNotAllowed);
        }
        if !self.is_priced(&ctx.route) && ctx.route.fallbacks.is_empty() {
            return Err(Refusal::ModelNotPriced);
        }
        let media_tokens = match ctx.operation {
            Operation::Chat => media_token_ceiling(parsed),
            Operation::Embeddings => Ok(0),
            Operation::Responses => responses_token_ceiling(parsed),
            Operation::Messages => messages_token_ceiling(parsed),
        }
        .map_err(Refusal::UnsupportedContent)?;
        let asked = match ctx.operation {
            Operation::Embeddings => Some(0),
            Operation::Chat => ["max_completion_tokens", "max_tokens"]
                .iter()
                .find_map(|k| parsed.get(*k).and_then(Value::as_i64))
                .filter(|n| *n > 0),
            Operation::Responses => parsed
                .get("max_output_tokens")
                .and_then(Value::as_i64)
                .filter(|n| *n > 0),
            Operation::Messages => match parsed.get("max_tokens").and_then(Value::as_i64) {
                Some(n) if n > 0 => Some(n),
                _ => {
                    return Err(Refusal::InvalidRequest(
                        "max_tokens: a positive integer is required.".into(),
                    ))
                }
            },
        };
        if let Some((key, hash)) = &ctx.idempotency {
            match self
                .budgets
                .ledger
                .replay(&self.pool, team, key, hash)
                .await
            {
                Ok(Replay::New) => {}
                Ok(Replay::Stored(stored)) => return Err(Refusal::Replayed(stored)),
                Ok(Replay::DifferentBody) => return Err(Refusal::IdempotencyKeyReused),
                Ok(Replay::InFlight) => return Err(Refusal::IdempotencyKeyInUse),
                Err(e) => return Err(Refusal::LedgerUnavailable(e.to_string())),
            }
        }
        // Worst case: every byte of the body a prompt token (a token is at
        // least one byte, and JSON framing outweighs per-message overhead),
        // plus a ceiling per image (a short URL can stand for a large image),
        // and every allowed output token used. Anthropic's prompt caching
        // bills a cache write at up to twice the input price.
        let bytes = i64::try_from(body_len).unwrap_or(i64::MAX);
        let cache_writes =
            ctx.operation == Operation::Messages && has_key(parsed, "cache_control", 0);
        let input_bound = bytes
            .saturating_add(media_tokens)
            .saturating_mul(if cache_writes { 2 } else { 1 });
        let choices = match ctx.operation {
            Operation::Chat => parsed
                .get("n")
                .and_then(Value::as_i64)
                .unwrap_or(1)
                .clamp(1, 128),
            _ => 1,
        };
        Ok(Admitted {
            input_bound,
            asked_output: asked,
            choices,
            prompt_estimate: bytes / 4,
        })
    }

    /// Holds `amount` against every budget that applies, atomically.
    async fn reserve(
        &self,
        ctx: &Context,
        admitted: &Admitted,
        amount: i64,
    ) -> Result<Hold, LedgerError> {
        self.budgets
            .ledger
            .reserve(ReserveRequest {
                id: uuid::Uuid::new_v4().to_string(),
                team: ctx.key.team.clone(),
                workspace: ctx.key.workspace.clone(),
                model: ctx.target.model.clone(),
                amount_nanocents: amount,
                estimated_tokens: admitted.input_bound / 4 + 1,
                idempotency: ctx.idempotency.clone(),
            })
            .await
    }

    /// Calls the provider, retrying retryable answers and connection errors
    /// with jitter up to `retries` times (a timed-out generation only with an
    /// idempotency key), and records each outcome with the circuit breaker.
    #[allow(clippy::too_many_arguments)]
    async fn call_with_retries(
        &self,
        ctx: &Context,
        hold: &Hold,
        call: &UpstreamCall,
        permit: Permit,
        credential: Option<&SecretString>,
        output_bound: i64,
        retries: u32,
    ) -> Result<reqwest::Response, Attempts> {
        let d = &ctx.target.deployment;
        let mut permit = permit;
        let mut attempt: u32 = 0;
        loop {
            let mut request = self
                .http
                .post(&call.url)
                .timeout(self.config.llm.timeout)
                .header("content-type", "application/json")
                .header("traceparent", ctx.trace.child())
                .header("x-request-id", &hold.id)
                .body(call.body.clone());
            if let Some(state) = &ctx.trace.state {
                request = request.header("tracestate", state);
            }
            match (d.api, credential) {
                (Api::Openai, Some(secret)) => {
                    request = request.bearer_auth(secret.expose_secret())
                }
                (Api::Anthropic, Some(secret)) => {
                    request = request.header("x-api-key", secret.expose_secret());
                }
                (_, None) => {}
            }
            if d.api == Api::Anthropic {
                request = request.header(
                    "anthropic-version",
                    call.anthropic_version
                        .as_deref()
                        .unwrap_or(anthropic::ANTHROPIC_VERSION),
                );
                if let Some(beta) = &call.anthropic_beta {
                    request = request.header("anthropic-beta", beta);
                }
            }
            let result = request.send().await;
            let (wait, reason, failure) = match result {
                Ok(response) if response.status().is_success() => {
                    self.breakers
                        .record(&d.provider, &d.id, permit, true, Instant::now());
                    return Ok(response);
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let body = response.bytes().await.unwrap_or_default();
                    let retryable = retry::is_retryable(status, &body);
                    let wait = retry::server_wait(&headers, std::time::SystemTime::now());
                    let failure = status >= 500 || status == 429;
                    if !retryable || attempt >= retries || permit.probe {
                        self.breakers.record(
                            &d.provider,
                            &d.id,
                            permit,
                            status < 500,
                            Instant::now(),
                        );
                        return Err(Attempts::Failed(UpstreamFailure::Status {
                            status,
                            body,
                            retry_after: headers
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned),
                        }));
                    }
                    (wait, status.to_string(), failure && status >= 500)
                }
                Err(e) => {
                    let timeout = e.is_timeout();
                    tracing::warn!(error = %e, attempt, deployment = %d.id, "upstream call failed");
                    // A generation that timed out may still run (and be billed):
                    // without an idempotency key, running it again could bill it twice.
                    let no_retry = timeout && ctx.idempotency.is_none();
                    if attempt >= retries || permit.probe || no_retry {
                        if timeout && output_bound > CALLER_SIZED_OUTPUT_TOKENS {
                            // The caller asked for a long generation: its timeout
                            // says nothing about the provider's health.
                            self.breakers.release(&d.provider, &d.id, permit);
                        } else {
                            self.breakers
                                .record(&d.provider, &d.id, permit, false, Instant::now());
                        }
                        return Err(Attempts::Failed(if timeout {
                            UpstreamFailure::Timeout
                        } else {
                            UpstreamFailure::Connect(e.to_string())
                        }));
                    }
                    (
                        None,
                        if timeout { "timeout" } else { "connect" }.to_owned(),
                        true,
                    )
                }
            };
            self.breakers
                .record(&d.provider, &d.id, permit, !failure, Instant::now());
            self.metrics
                .retries
                .add(&[&d.provider, &ctx.target.model, &reason], 1.0);
            let sleep = wait.unwrap_or_else(|| {
                retry::backoff(
                    attempt,
                    self.config.llm.retry_base,
                    self.config.llm.retry_cap,
                )
            });
            tokio::time::sleep(sleep).await;
            attempt += 1;
            permit = self
                .breakers
                .acquire(&d.provider, &d.id, Instant::now())
                .map_err(Attempts::CircuitOpen)?;
        }
    }

    /// The answer to a failed call that ends the request: the hold voided
    /// (nothing was billed).
    fn upstream_failed(
        &self,
        ctx: &Context,
        hold: &Hold,
        failure: UpstreamFailure,
        upstream: Duration,
    ) -> Reply {
        let (status, error_type) = failure.classify();
        self.void(ctx, hold, status, error_type, upstream);
        self.upstream_reply(ctx, failure)
    }

    /// The caller's answer to a failed call (recorded elsewhere).
    fn upstream_reply(&self, ctx: &Context, failure: UpstreamFailure) -> Reply {
        let provider = &ctx.target.deployment.provider;
        match failure {
            UpstreamFailure::Timeout => Reply::error(
                504,
                "timeout",
                format!(
                    "{provider} did not answer within {} s.",
                    self.config.llm.timeout.as_secs()
                ),
            ),
            UpstreamFailure::Connect(e) => Reply::error(
                502,
                "upstream_unreachable",
                format!("Paved cannot reach {provider}: {e}"),
            ),
            UpstreamFailure::Status {
                status,
                body,
                retry_after,
            } => {
                let provider_message = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(500).collect());
                let error_type = match status {
                    401 | 403 => "unauthorized",
                    429 => "rate_limited",
                    s if s >= 500 => "upstream_5xx",
                    _ => "bad_request",
                };
                if matches!(status, 401 | 403) {
                    // The platform's credential was refused, not the caller's
                    // key. The provider's text (which may describe the key)
                    // goes to the log, not to the caller.
                    tracing::warn!(
                        provider = %provider,
                        deployment = %ctx.target.deployment.id,
                        status,
                        message = %provider_message.escape_debug(),
                        "the provider refused the platform's credential"
                    );
                    return Reply::error(
                        502,
                        "upstream_credential_error",
                        format!(
                            "{provider} refused the platform's credential for {}; the platform team has been told in the log.",
                            ctx.target.model
                        ),
                    );
                }
                // An Anthropic deployment's error, for a caller of OpenAI's API.
                let body = if ctx.target.deployment.api == Api::Anthropic
                    && ctx.operation != Operation::Messages
                    && !body.is_empty()
                {
                    anthropic::error_to_openai(&body)
                } else {
                    body
                };
                let mut reply = Reply {
                    status,
                    content_type: "application/json".into(),
                    headers: Vec::new(),
                    body: ReplyBody::Full(if body.is_empty() {
                        Bytes::from(
                            json!({"error": {"message": provider_message, "type": error_type}})
                                .to_string(),
                        )
                    } else {
                        body
                    }),
                };
                if let Some(r) = retry_after {
                    reply.headers.push(("retry-after", r));
                }
                reply
            }
        }
    }

    /// Passes the provider's answer on and settles the hold to its usage: a
    /// stream is metered as it flows; a body that breaks off mid-way costs
    /// the worst case. The answer names the model and deployment that served it.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        self: Arc<Self>,
        mut ctx: Context,
        hold: Hold,
        price: Price,
        bounds: (i64, i64),
        call: &UpstreamCall,
        response: reqwest::Response,
        started: Instant,
    ) -> Reply {
        let status = response.status().as_u16();
        let served = served_headers(&ctx);
        if ctx.attempts > 1 || ctx.target.model != ctx.route.model {
            self.metrics
                .fallbacks
                .add(&[&ctx.route.model, &ctx.target.deployment.id], 1.0);
        }
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        if call.streaming && content_type.starts_with("text/event-stream") {
            let mut reply = stream::metered(
                self.clone(),
                ctx,
                hold,
                price,
                bounds,
                response,
                call.shape.clone(),
                started,
            );
            reply.headers.extend(served);
            return reply;
        }
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                // The provider may have billed: charge the worst case rather than nothing.
                tracing::warn!(error = %e, "upstream body failed mid-way");
                self.charge(
                    &ctx,
                    &hold,
                    price,
                    None,
                    bounds,
                    502,
                    Some("upstream_5xx"),
                    started.elapsed(),
                    None,
                );
                return Reply::error(
                    502,
                    "upstream_error",
                    format!("{} broke off its answer.", ctx.target.deployment.provider),
                );
            }
        };
        let upstream = started.elapsed();
        let parsed = serde_json::from_slice::<Value>(&body).ok();
        if let Some(m) = parsed
            .as_ref()
            .and_then(|v| v.get("model"))
            .and_then(Value::as_str)
        {
            ctx.span.record("gen_ai.response.model", m);
        }
        let (usage, body) = match (&call.shape, parsed) {
            (Shape::AnthropicChat { .. }, Some(v)) => (
                anthropic_usage(&v["usage"], false),
                Bytes::from(anthropic::message_to_chat(&v, &ctx.target.model).to_string()),
            ),
            (Shape::Anthropic { long_cache }, Some(v)) => {
                (anthropic_usage(&v["usage"], *long_cache), body)
            }
            (_, Some(v)) => (usage_of(&v), body),
            (_, None) => (None, body),
        };
        let mut body = body;
        let withheld = self.guard_response(&mut ctx, &mut body);
        if let Some(log) = ctx.log.as_mut() {
            if ctx.team.settings.log_bodies {
                log.response_body = Some(settings::mask(&String::from_utf8_lossy(&body)));
            }
        }
        if withheld {
            // The provider produced (and billed) it: charged, but not passed on.
            self.charge(
                &ctx,
                &hold,
                price,
                usage,
                bounds,
                422,
                Some("guardrail"),
                upstream,
                None,
            );
            return Reply::error(
                422,
                "guardrail_blocked",
                format!(
                    "The answer contained {}, which team {}'s guardrails withhold; it was billed.",
                    ctx.guardrails.last().map_or("", |g| g.as_str()),
                    ctx.key.team
                ),
            );
        }
        if let Some((key, policy)) = &ctx.cache {
            if status == 200 && !policy.ttl.is_zero() {
                let now = Instant::now();
                self.cache.put(
                    *key,
                    cache::Entry {
                        body: body.clone(),
                        content_type: content_type.clone(),
                        cost_nanocents: price.cost(
                            usage.map_or(bounds.0, |u| u.0),
                            usage.map_or(bounds.1, |u| u.1),
                        ),
                        model: ctx.target.model.clone(),
                        deployment: ctx.target.deployment.id.clone(),
                        stored_at: now,
                        expires_at: now + policy.ttl,
                    },
                );
            }
        }
        let stored = ctx.idempotency.as_ref().map(|_| StoredResponse {
            status,
            content_type: content_type.clone(),
            body: body.clone(),
        });
        let remaining = self.charge(
            &ctx, &hold, price, usage, bounds, status, None, upstream, stored,
        );
        let mut served = served;
        if ctx.cache.is_some() {
            served.push(("x-paved-cache", "miss".into()));
        }
        let mut reply = Reply {
            status,
            content_type,
            headers: served,
            body: ReplyBody::Full(body),
        };
        if let Some((cents, reset)) = remaining {
            reply
                .headers
                .push(("x-paved-budget-remaining-cents", cents.to_string()));
            reply.headers.push(("x-paved-budget-reset", reset));
        }
        reply
    }

    /// Settles `hold` to the actual usage (the worst case when the provider
    /// gave none) and records everything; returns the remaining budget.
    #[allow(clippy::too_many_arguments)]
    fn charge(
        &self,
        ctx: &Context,
        hold: &Hold,
        price: Price,
        usage: Option<(i64, i64)>,
        worst: (i64, i64),
        status: u16,
        error_type: Option<&'static str>,
        upstream: Duration,
        stored: Option<StoredResponse>,
    ) -> Option<(i64, String)> {
        let (input, output) = usage.unwrap_or(worst);
        let cost = price.cost(input, output);
        let outcome = Outcome {
            status,
            error_type,
            input_tokens: input,
            output_tokens: output,
            cost_nanocents: cost,
            upstream,
        };
        let response = match (&ctx.idempotency, stored) {
            (Some((key, hash)), Some(stored)) => Some((key.clone(), hash.clone(), stored)),
            _ => None,
        };
        let record = self.finish(ctx, Some(hold), &outcome);
        if let Some(alert) = self.budgets.ledger.settle(hold, record, response) {
            self.announce(alert);
        }
        self.budgets
            .ledger
            .remaining(&ctx.key.team, &ctx.key.workspace)
    }

    fn void(
        &self,
        ctx: &Context,
        hold: &Hold,
        status: u16,
        error_type: &'static str,
        upstream: Duration,
    ) {
        let record = self.finish(
            ctx,
            Some(hold),
            &Outcome::failed(status, error_type, upstream),
        );
        self.budgets.ledger.void(hold, record);
    }

    fn refusal(&self, ctx: &Context, error: LedgerError) -> Reply {
        let (reply, error_type) = Self::refusal_parts(&error);
        self.refuse(ctx, reply, error_type)
    }

    /// The answer to a refused hold, recorded elsewhere.
    fn refusal_reply(&self, error: LedgerError) -> Reply {
        Self::refusal_parts(&error).0
    }

    fn refusal_parts(error: &LedgerError) -> (Reply, &'static str) {
        match error {
            LedgerError::BudgetExceeded {
                remaining_cents,
                resets_at,
                ..
            } => (
                Reply::error(429, "budget_exceeded", error.to_string())
                    .with(
                        "x-paved-budget-remaining-cents",
                        remaining_cents.to_string(),
                    )
                    .with("x-paved-budget-reset", resets_at.clone()),
                "budget_exceeded",
            ),
            LedgerError::RateLimited {
                retry_after_secs, ..
            } => (
                Reply::error(429, "rate_limit_exceeded", error.to_string())
                    .with("retry-after", retry_after_secs.to_string()),
                "rate_limited",
            ),
            LedgerError::NoBudget(_) => (
                Reply::error(403, "budget_not_set", error.to_string()),
                "budget_exceeded",
            ),
            LedgerError::InFlight => (
                Reply::error(409, "idempotency_key_in_use", error.to_string()),
                "bad_request",
            ),
            LedgerError::Unavailable(_) => (
                Reply::error(503, "ledger_unavailable", error.to_string()),
                "budget_exceeded",
            ),
        }
    }

    /// Records metrics and span fields; returns the usage record.
    fn finish(&self, ctx: &Context, hold: Option<&Hold>, outcome: &Outcome) -> UsageRecord {
        let elapsed = ctx.started.elapsed();
        let labels = ctx.labels();
        let m = &self.metrics;
        m.latency.observe(&labels, elapsed.as_secs_f64());
        let class = match outcome.status {
            200..=299 => "2xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        m.requests.add(
            &[labels[0], labels[1], labels[2], labels[3], labels[4], class],
            1.0,
        );
        if let Some(error_type) = outcome.error_type {
            m.errors.add(
                &[
                    labels[0], labels[1], labels[2], labels[3], labels[4], error_type,
                ],
                1.0,
            );
            ctx.span.record("error.type", error_type);
            ctx.span.record("otel.status_code", "ERROR");
        }
        if outcome.cost_nanocents > 0 {
            m.cost.add(
                &[&ctx.key.workspace, &ctx.key.team],
                outcome.cost_nanocents as f64 / NANOCENTS_PER_CENT as f64,
            );
        }
        if outcome.input_tokens > 0 || outcome.output_tokens > 0 {
            m.input_tokens.add(&labels, outcome.input_tokens as f64);
            m.output_tokens.add(&labels, outcome.output_tokens as f64);
            let genai = [labels[4], labels[0], labels[1]];
            m.genai_tokens.observe(
                &[genai[0], genai[1], genai[2], "input"],
                outcome.input_tokens as f64,
            );
            if ctx.operation == Operation::Chat {
                m.genai_tokens.observe(
                    &[genai[0], genai[1], genai[2], "output"],
                    outcome.output_tokens as f64,
                );
            }
            ctx.span
                .record("gen_ai.usage.input_tokens", outcome.input_tokens);
            ctx.span
                .record("gen_ai.usage.output_tokens", outcome.output_tokens);
        }
        if outcome.upstream > Duration::ZERO {
            m.genai_duration.observe(
                &[labels[4], labels[0], labels[1]],
                outcome.upstream.as_secs_f64(),
            );
            m.overhead.observe(
                &[labels[0], labels[1], labels[4]],
                elapsed.saturating_sub(outcome.upstream).as_secs_f64(),
            );
        }
        UsageRecord {
            at_ms: 0,
            team: ctx.key.team.clone(),
            workspace: ctx.key.workspace.clone(),
            key_id: Some(ctx.key.id),
            key_name: Some(ctx.key.name.clone()),
            provider: ctx.target.deployment.provider.clone(),
            model: ctx.target.model.clone(),
            deployment: Some(ctx.target.deployment.id.clone()),
            requested_model: (ctx.target.model != ctx.route.model).then(|| ctx.route.model.clone()),
            attempts: i64::from(ctx.attempts.max(1)),
            fallbacks: (!ctx.fallbacks.is_empty()).then(|| ctx.fallbacks.join(", ")),
            cache_hit: false,
            saved_nanocents: 0,
            guardrails: (!ctx.guardrails.is_empty()).then(|| ctx.guardrails.join("; ")),
            log: ctx.log.clone(),
            request_type: ctx.operation.name().to_owned(),
            input_tokens: outcome.input_tokens,
            output_tokens: outcome.output_tokens,
            cost_nanocents: outcome.cost_nanocents,
            latency_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            overhead_us: (outcome.upstream > Duration::ZERO).then(|| {
                i64::try_from(elapsed.saturating_sub(outcome.upstream).as_micros())
                    .unwrap_or(i64::MAX)
            }),
            status: outcome.status,
            error_type: outcome.error_type.map(str::to_owned),
            trace_id: Some(ctx.trace.trace_id.clone()),
            idempotency_key: ctx.idempotency.as_ref().map(|(k, _)| k.clone()),
            reservation_id: hold.map(|h| h.id.clone()),
            feature: ctx.feature.clone(),
        }
    }

    /// Posts a soft-threshold alert to the configured webhook (once per period).
    fn announce(&self, alert: SoftAlert) {
        tracing::warn!(budget = %alert.scope.describe(), percent = alert.percent, spent_cents = alert.spent_cents, "budget soft threshold crossed");
        let Some(url) = self.config.llm.alert_webhook.clone() else {
            return;
        };
        let http = self.http.clone();
        let ledger = self.budgets.ledger.clone();
        let tz = self.budgets.ledger.time_zone().clone();
        tokio::spawn(async move {
            let body = json!({
                "type": "budget.soft_threshold_crossed",
                "team": alert.scope.team,
                "workspace_id": Some(&alert.scope.workspace).filter(|w| !w.is_empty()),
                "percent": alert.percent,
                "spent_cents": alert.spent_cents,
                "limit_cents": alert.limit_cents,
                "period_start": crate::budgets::ledger::rfc3339(alert.period_start_ms, &tz),
                "text": format!("{} has spent ${}.{:02} of its ${}.{:02} LLM budget ({}% alert threshold).",
                    alert.scope.describe(), alert.spent_cents / 100, alert.spent_cents % 100,
                    alert.limit_cents / 100, alert.limit_cents % 100, alert.percent),
            });
            let status = match http
                .post(url.as_str())
                .timeout(Duration::from_secs(10))
                .json(&body)
                .send()
                .await
            {
                Ok(r) => r.status().as_u16().to_string(),
                Err(e) => format!("failed: {e}"),
            };
            ledger.alert_delivered(&alert, status);
        });
    }

    /// The provider key for `team`: the team's own at `{prefix}/llm/{team}`,
    /// else the platform-wide one the route names; cached for a short TTL.
    async fn credential(&self, team: &str, route: &Deployment) -> Result<Credential, String> {
        let cache_key = credential_key(team, route);
        let cached = self
            .credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key)
            .cloned();
        if let Some(c) = &cached {
            if c.at.elapsed() < self.config.llm.credential_ttl {
                return Ok(Credential {
                    key: c.current.clone(),
                    previous: (!c.confirmed).then(|| c.previous.clone()).flatten(),
                });
            }
        }
        let Some(vault) = &self.vault else {
            return match &route.credential {
                None => Ok(Credential::default()),
                Some(path) => Err(format!(
                    "{} needs the credential at {path} but Vault is not configured",
                    route.provider
                )),
            };
        };
        let prefix = &vault.config().prefix;
        let mut found = read_field(
            vault,
            &format!("{prefix}/llm/{team}"),
            &route.credential_key,
        )
        .await?;
        if found.is_none() {
            if let Some(path) = &route.credential {
                found =
                    read_field(vault, &format!("{prefix}/{path}"), &route.credential_key).await?;
                if found.is_none() {
                    return Err(format!(
                        "no {} key: neither team {team}'s at {prefix}/llm/{team} nor the platform's at {prefix}/{path} (field `{}`)",
                        route.provider, route.credential_key
                    ));
                }
            }
        }
        // A changed key is a rotation: the old one stays at hand until the
        // new one has answered once.
        let entry = match cached {
            Some(old) if !same_secret(&old.current, &found) => CachedCredential {
                previous: if old.current.is_some() {
                    old.current
                } else {
                    old.previous
                },
                current: found,
                confirmed: false,
                at: Instant::now(),
            },
            Some(old) => CachedCredential {
                at: Instant::now(),
                ..old
            },
            None => CachedCredential {
                current: found,
                previous: None,
                confirmed: true,
                at: Instant::now(),
            },
        };
        let credential = Credential {
            key: entry.current.clone(),
            previous: (!entry.confirmed).then(|| entry.previous.clone()).flatten(),
        };
        self.credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cache_key, entry);
        Ok(credential)
    }

    /// The current key answered: a rotation is complete, the old key forgotten.
    fn confirm_credential(&self, team: &str, route: &Deployment) {
        if let Some(c) = self
            .credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&credential_key(team, route))
        {
            if !c.confirmed {
                tracing::info!(team, deployment = %route.id, "a rotated provider key answered; the previous key is no longer used");
            }
            c.confirmed = true;
            c.previous = None;
        }
    }

    /// Sets the budget and circuit gauges from the live state (at scrape time).
    pub fn refresh_gauges(&self, rules: &[crate::budgets::BudgetRule]) {
        let m = &self.metrics;
        m.budget_remaining.clear();
        m.budget_limit.clear();
        m.budget_spent.clear();
        for rule in rules {
            let ws = rule.workspace_id.clone().unwrap_or_default();
            if let Some(f) = self.budgets.ledger.figures(&rule.team, &ws) {
                let limit = rule.limit_cents as f64;
                let spent = f.spent_nanocents as f64 / NANOCENTS_PER_CENT as f64;
                let reserved = f.reserved_nanocents as f64 / NANOCENTS_PER_CENT as f64;
                m.budget_limit.set(&[&rule.team, &ws], limit);
                m.budget_spent.set(&[&rule.team, &ws], spent);
                m.budget_remaining
                    .set(&[&rule.team, &ws], (limit - spent - reserved).max(0.0));
            }
        }
        m.circuit.clear();
        for d in self.routes().flat_map(|r| &r.deployments) {
            m.circuit.set(&[&d.provider, &d.id], 0.0);
        }
        for c in self.breakers.list(Instant::now()) {
            m.circuit.set(&[&c.provider, &c.model], c.state.gauge());
        }
        m.held.set(&[], self.budgets.ledger.held_count() as f64);
    }

    /// Test and shutdown helper: waits until the ledger has committed everything.
    pub async fn flush(&self) {
        self.budgets.ledger.flush().await;
    }
}

/// What admission found: the worst case, before a deployment is chosen.
struct Admitted {
    /// Prompt tokens at most (billable: cache writes counted at their premium).
    input_bound: i64,
    /// The output limit the request set, if any.
    asked_output: Option<i64>,
    /// Choices asked for (`n`).
    choices: i64,
    /// A rough prompt size in tokens (bytes / 4), for the context window.
    prompt_estimate: i64,
}

impl Admitted {
    /// Output tokens at most on a model whose default limit is `model_max`.
    fn output_bound(&self, model_max: i64) -> i64 {
        self.asked_output
            .unwrap_or(model_max)
            .saturating_mul(self.choices)
    }
}

/// Why a deployment was passed over, kept to answer with when none is left.
enum Failed {
    /// The provider's answer or the transport failed.
    Upstream(UpstreamFailure, Duration),
    /// It timed out (already charged its worst case).
    TimedOut,
    /// Its circuit is open.
    CircuitOpen(Duration),
    /// Its key could not be read.
    Credential(String),
    /// The request cannot be said in its API.
    Untranslatable(String),
    /// It is at its per-minute limit.
    Busy,
}

/// The response headers naming what served a request.
fn served_headers(ctx: &Context) -> Vec<(&'static str, String)> {
    vec![
        ("x-paved-model", ctx.target.model.clone()),
        ("x-paved-deployment", ctx.target.deployment.id.clone()),
        ("x-paved-attempts", ctx.attempts.to_string()),
    ]
}

/// Whether `key` occurs anywhere in `v` (bounded depth).
fn has_key(v: &Value, key: &str, depth: usize) -> bool {
    if depth > 32 {
        return false;
    }
    match v {
        Value::Object(map) => {
            map.contains_key(key) || map.values().any(|x| has_key(x, key, depth + 1))
        }
        Value::Array(items) => items.iter().any(|x| has_key(x, key, depth + 1)),
        _ => false,
    }
}

/// Billable `(input, output)` tokens of an Anthropic `usage`: cache reads at
/// a tenth of the input price, cache writes at 1.25× (twice with the
/// one-hour TTL), as Anthropic bills them; rounded up.
pub fn anthropic_usage(usage: &Value, long_cache: bool) -> Option<(i64, i64)> {
    let n = |k: &str| usage.get(k).and_then(Value::as_i64).unwrap_or(0).max(0);
    let input = usage.get("input_tokens").and_then(Value::as_i64)?.max(0);
    let writes = n("cache_creation_input_tokens");
    let reads = n("cache_read_input_tokens");
    let writes = if long_cache {
        writes.saturating_mul(2)
    } else {
        writes.saturating_mul(5).saturating_add(3) / 4
    };
    let reads = reads.saturating_add(9) / 10;
    Some((
        input.saturating_add(writes).saturating_add(reads),
        n("output_tokens"),
    ))
}

/// Why a request was answered before anything was reserved. One place turns
/// each into OpenAI's error body and the metrics' error type.
enum Refusal {
    /// The team's budget does not allow the model.
    ModelNotAllowed,
    /// The model has no price, so it cannot be billed.
    ModelNotPriced,
    /// The idempotency key's first answer, replayed.
    Replayed(Arc<StoredResponse>),
    /// The idempotency key was used with another body.
    IdempotencyKeyReused,
    /// A request with the idempotency key is still running.
    IdempotencyKeyInUse,
    /// The ledger could not be read.
    LedgerUnavailable(String),
    /// A part whose cost cannot be bounded before the call.
    UnsupportedContent(String),
    /// A required field is missing or malformed.
    InvalidRequest(String),
}

impl Refusal {
    /// The answer to the caller (recorded as a refused request, except a replay).
    fn reply(self, gateway: &Gateway, ctx: &Context) -> Reply {
        let (reply, error_type) = match self {
            Refusal::Replayed(stored) => {
                return Reply {
                    status: stored.status,
                    content_type: stored.content_type.clone(),
                    headers: vec![("idempotent-replayed", "true".into())],
                    body: ReplyBody::Full(stored.body.clone()),
                }
            }
            Refusal::ModelNotAllowed => (
                Reply::error(
                    403,
                    "model_not_allowed",
                    format!(
                        "Team {}'s budget does not allow `{}`; a team lead can add it on the Budget page.",
                        ctx.key.team, ctx.route.model
                    ),
                ),
                "bad_request",
            ),
            Refusal::ModelNotPriced => (
                Reply::error(
                    403,
                    "model_not_priced",
                    format!(
                        "`{}` from {} has no price in Paved's price table, so it cannot be billed; a platform admin adds its price first.",
                        ctx.route.model, ctx.route.provider()
                    ),
                ),
                "bad_request",
            ),
            Refusal::IdempotencyKeyReused => (
                Reply::error(
                    422,
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used with a different request body; use a new key for a new request.",
                ),
                "bad_request",
            ),
            Refusal::IdempotencyKeyInUse => (
                Reply::error(
                    409,
                    "idempotency_key_in_use",
                    "A request with this Idempotency-Key is still in progress; retry after it finishes.",
                ),
                "bad_request",
            ),
            Refusal::LedgerUnavailable(message) => (
                Reply::error(503, "ledger_unavailable", message),
                "budget_exceeded",
            ),
            Refusal::UnsupportedContent(message) => (
                Reply::error(400, "unsupported_content", message),
                "bad_request",
            ),
            Refusal::InvalidRequest(message) => (
                Reply::error(400, "invalid_request_error", message),
                "bad_request",
            ),
        };
        gateway.refuse(ctx, reply, error_type)
    }
}

/// How the provider's answer is read: where its usage is, and whether it is
/// translated for the caller.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    /// OpenAI chat completions (the caller may not have asked for the usage chunk).
    OpenaiChat {
        /// Whether the caller asked for usage in the stream (Paved always does).
        client_wants_usage: bool,
    },
    /// OpenAI embeddings (no stream).
    Embeddings,
    /// OpenAI's Responses API.
    Responses,
    /// Anthropic's Messages API, passed through.
    Anthropic {
        /// Cache writes with the one-hour TTL.
        long_cache: bool,
    },
    /// Anthropic's Messages API answering an OpenAI chat completion call.
    AnthropicChat {
        /// Whether the caller asked for usage in the stream.
        include_usage: bool,
    },
}

/// The request as the provider gets it.
struct UpstreamCall {
    url: String,
    body: Bytes,
    streaming: bool,
    shape: Shape,
    /// For Anthropic: the caller's `anthropic-version`, passed on.
    anthropic_version: Option<String>,
    /// For Anthropic: the caller's `anthropic-beta`, passed on.
    anthropic_beta: Option<String>,
}

impl UpstreamCall {
    /// The caller's body in the deployment's API, with the deployment's
    /// model name, asking a stream for its usage (the ledger needs it).
    fn new(
        ctx: &Context,
        candidate: &Candidate,
        parsed: &Value,
        output_bound: i64,
    ) -> Result<Self, String> {
        let d = &candidate.deployment;
        let streaming = parsed.get("stream") == Some(&Value::Bool(true));
        let anthropic_url = || {
            if d.base_url.ends_with("/v1") {
                format!("{}/messages", d.base_url)
            } else {
                format!("{}/v1/messages", d.base_url)
            }
        };
        let with_model = || {
            let mut body = parsed.clone();
            if let Some(obj) = body.as_object_mut() {
                obj.insert("model".into(), Value::String(d.upstream_model.clone()));
            }
            body
        };
        let (url, body, shape) = match (ctx.operation, d.api) {
            (Operation::Chat, Api::Openai) => {
                let mut body = with_model();
                let mut client_wants_usage = true;
                if streaming {
                    if let Some(obj) = body.as_object_mut() {
                        let options = obj.entry("stream_options").or_insert_with(|| json!({}));
                        if let Some(options) = options.as_object_mut() {
                            client_wants_usage =
                                options.get("include_usage") == Some(&Value::Bool(true));
                            options.insert("include_usage".into(), Value::Bool(true));
                        }
                    }
                }
                (
                    format!("{}/chat/completions", d.base_url),
                    body,
                    Shape::OpenaiChat { client_wants_usage },
                )
            }
            (Operation::Chat, Api::Anthropic) => {
                let body = anthropic::chat_to_messages(parsed, &d.upstream_model, output_bound)
                    .map_err(|e| e.0)?;
                let include_usage = parsed["stream_options"]["include_usage"] == json!(true);
                (
                    anthropic_url(),
                    body,
                    Shape::AnthropicChat { include_usage },
                )
            }
            (Operation::Embeddings, Api::Openai) => (
                format!("{}/embeddings", d.base_url),
                with_model(),
                Shape::Embeddings,
            ),
            (Operation::Responses, Api::Openai) => (
                format!("{}/responses", d.base_url),
                with_model(),
                Shape::Responses,
            ),
            (Operation::Messages, Api::Anthropic) => (
                anthropic_url(),
                with_model(),
                Shape::Anthropic {
                    long_cache: has_key(parsed, "cache_control", 0)
                        && parsed.to_string().contains("\"1h\""),
                },
            ),
            _ => {
                return Err(format!(
                    "{} does not speak this API.",
                    candidate.deployment.id
                ))
            }
        };
        Ok(UpstreamCall {
            url,
            body: Bytes::from(body.to_string()),
            streaming,
            shape,
            anthropic_version: ctx.anthropic_version.clone(),
            anthropic_beta: ctx.anthropic_beta.clone(),
        })
    }
}

/// How the attempts at the provider ended without an answer to pass on.
enum Attempts {
    /// Every attempt failed.
    Failed(UpstreamFailure),
    /// The breaker opened between attempts.
    CircuitOpen(Duration),
}

enum UpstreamFailure {
    Status {
        status: u16,
        body: Bytes,
        retry_after: Option<String>,
    },
    Timeout,
    Connect(String),
}

impl UpstreamFailure {
    fn status(&self) -> Option<u16> {
        match self {
            UpstreamFailure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether another deployment may succeed where this one failed: rate
    /// limits, overload, server errors, refused credentials, the network.
    fn falls_back(&self) -> bool {
        match self {
            UpstreamFailure::Status { status, .. } => {
                matches!(status, 401 | 403 | 408 | 409 | 429) || *status >= 500
            }
            UpstreamFailure::Timeout | UpstreamFailure::Connect(_) => true,
        }
    }

    /// Whether the provider said the prompt is longer than the model takes
    /// (OpenAI's `context_length_exceeded`, Anthropic's "prompt is too long").
    fn context_too_long(&self) -> bool {
        let UpstreamFailure::Status { status, body, .. } = self else {
            return false;
        };
        if !matches!(status, 400 | 413) {
            return false;
        }
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return false;
        };
        let error = &v["error"];
        let message = error["message"]
            .as_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        error["code"] == "context_length_exceeded"
            || message.contains("maximum context length")
            || message.contains("prompt is too long")
            || message.contains("context window")
    }

    /// Status and error type for metrics and the usage record.
    fn classify(&self) -> (u16, &'static str) {
        match self {
            UpstreamFailure::Timeout => (504, "timeout"),
            UpstreamFailure::Connect(_) => (502, "upstream_5xx"),
            UpstreamFailure::Status { status, .. } => (
                *status,
                match status {
                    401 | 403 => "unauthorized",
                    429 => "rate_limited",
                    s if *s >= 500 => "upstream_5xx",
                    _ => "bad_request",
                },
            ),
        }
    }
}

/// `(prompt, completion)` tokens from an OpenAI-style `usage`.
pub fn usage_of(v: &Value) -> Option<(i64, i64)> {
    let usage = v.get("usage").filter(|u| u.is_object())?;
    let input = usage
        .get("prompt_tokens")
        .or_else(|| usage.get("input_tokens"))
        .and_then(Value::as_i64)?;
    let output = usage
        .get("completion_tokens")
        .or_else(|| usage.get("output_tokens"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    Some((input.max(0), output.max(0)))
}

/// Which cached key serves `team` at `route`.
fn credential_key(team: &str, route: &Deployment) -> CredentialKey {
    (
        team.to_owned(),
        route.provider.clone(),
        route.credential.clone(),
        route.credential_key.clone(),
    )
}

fn same_secret(a: &Option<SecretString>, b: &Option<SecretString>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        (None, None) => true,
        _ => false,
    }
}

async fn read_field(
    vault: &Vault,
    path: &str,
    field: &str,
) -> Result<Option<SecretString>, String> {
    let (secret, request_id) = vault
        .read_kv_traced(path)
        .await
        .map_err(|e| format!("cannot read the provider key from Vault: {e}"))?;
    // The request that needed the key names Vault's request, so the two
    // audit trails can be joined.
    if let Some(id) = request_id {
        tracing::Span::current().record("paved.vault_request_id", id.as_str());
    }
    Ok(secret.and_then(|data| {
        data.get(field)
            .and_then(Value::as_str)
            .map(|s| SecretString::from(s.to_owned()))
    }))
}

/// Input tokens one image may cost at most, whatever its size or detail
/// (OpenAI's high-detail tiling tops out near 1,100 for 2048×2048, Anthropic
/// near 1,600): added to the hold for every image part.
pub const IMAGE_TOKEN_CEILING: i64 = 2_000;

/// A timeout of a request that may produce more output than this is the
/// caller's (a long generation), not a sign the provider is failing.
pub const CALLER_SIZED_OUTPUT_TOKENS: i64 = 4_096;

/// The input tokens images in a chat request may add beyond its bytes;
/// refuses parts whose cost cannot be bounded before the call (audio, files).
fn media_token_ceiling(request: &Value) -> Result<i64, String> {
    let mut tokens: i64 = 0;
    let messages = request["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for message in messages {
        let Some(parts) = message["content"].as_array() else {
            continue;
        };
        for part in parts {
            match part["type"].as_str().unwrap_or_default() {
                "text" | "input_text" | "" => {}
                "image_url" | "input_image" | "image" => {
                    tokens = tokens.saturating_add(IMAGE_TOKEN_CEILING);
                }
                other => {
                    return Err(format!(
                        "Content parts of type `{other}` are not accepted: their cost cannot be bounded before the call, so no budget could be held for them. Send text and images only."
                    ))
                }
            }
        }
    }
    Ok(tokens)
}

/// The input tokens images in a Responses API request may add beyond its
/// bytes; refuses what cannot be bounded before the call: a stored
/// conversation (`previous_response_id`, `conversation`, `prompt`), files,
/// audio, hosted tools (billed per call by the provider) and background runs.
fn responses_token_ceiling(request: &Value) -> Result<i64, String> {
    for (key, why) in [
        ("previous_response_id", "the stored conversation it continues is billed as input but cannot be measured before the call; send the conversation's items in `input` instead"),
        ("conversation", "the stored conversation is billed as input but cannot be measured before the call; send its items in `input` instead"),
        ("prompt", "a stored prompt is billed as input but cannot be measured before the call; send its text in `input` instead"),
    ] {
        if request.get(key).is_some_and(|v| !v.is_null()) {
            return Err(format!("`{key}` is not accepted: {why}."));
        }
    }
    if request.get("background") == Some(&Value::Bool(true)) {
        return Err("`background: true` is not accepted: the gateway settles a request's cost when it answers.".into());
    }
    for tool in request["tools"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let kind = tool["type"].as_str().unwrap_or_default();
        if !matches!(kind, "function" | "custom") {
            return Err(format!(
                "Tools of type `{kind}` are not accepted: the provider bills hosted tools per call, which no budget hold can bound. Use function tools."
            ));
        }
    }
    let mut tokens: i64 = 0;
    let items = request["input"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for item in items {
        let Some(parts) = item["content"].as_array() else {
            continue;
        };
        for part in parts {
            match part["type"].as_str().unwrap_or_default() {
                "input_text" | "output_text" | "text" | "refusal" | "" => {}
                "input_image" => tokens = tokens.saturating_add(IMAGE_TOKEN_CEILING),
                other => {
                    return Err(format!(
                        "Content parts of type `{other}` are not accepted: their cost cannot be bounded before the call, so no budget could be held for them. Send text and images only."
                    ))
                }
            }
        }
    }
    Ok(tokens)
}

/// The input tokens images in an Anthropic Messages request may add beyond
/// its bytes; refuses documents, server tools (billed per use) and MCP
/// servers, whose cost cannot be bounded before the call.
fn messages_token_ceiling(request: &Value) -> Result<i64, String> {
    if request.get("mcp_servers").is_some_and(|v| !v.is_null()) {
        return Err("`mcp_servers` is not accepted: remote tool calls are billed as input that cannot be bounded before the call.".into());
    }
    if request.get("container").is_some_and(|v| !v.is_null()) {
        return Err("`container` is not accepted: code execution is billed by the hour, which no budget hold can bound.".into());
    }
    for tool in request["tools"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        if let Some(kind) = tool["type"].as_str().filter(|k| *k != "custom") {
            return Err(format!(
                "Tools of type `{kind}` are not accepted: Anthropic bills server tools per use, which no budget hold can bound. Use client tools (name, description, input_schema)."
            ));
        }
    }
    fn walk(blocks: &[Value], tokens: &mut i64, depth: usize) -> Result<(), String> {
        for block in blocks {
            match block["type"].as_str().unwrap_or_default() {
                "image" => *tokens = tokens.saturating_add(IMAGE_TOKEN_CEILING),
                "tool_result" if depth == 0 => {
                    if let Some(inner) = block["content"].as_array() {
                        walk(inner, tokens, depth + 1)?;
                    }
                }
                "text" | "tool_use" | "tool_result" | "thinking" | "redacted_thinking" | "" => {}
                other => {
                    return Err(format!(
                        "Content blocks of type `{other}` are not accepted: their cost cannot be bounded before the call, so no budget could be held for them. Send text, images and tool results."
                    ))
                }
            }
        }
        Ok(())
    }
    let mut tokens: i64 = 0;
    for message in request["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        if let Some(blocks) = message["content"].as_array() {
            walk(blocks, &mut tokens, 0)?;
        }
    }
    Ok(tokens)
}

/// Scans every model-visible text of `value` with `detectors`, redacting
/// matches when asked; returns the matches (their positions are per text).
fn guard(
    value: &mut Value,
    detectors: &[guardrails::Detector],
    redact: bool,
) -> Vec<guardrails::Match> {
    let mut found = Vec::new();
    guardrails::visit_text(value, &mut |text: &mut String| {
        let matches = guardrails::scan(text, detectors);
        if matches.is_empty() {
            return;
        }
        if redact {
            *text = guardrails::redact(text, &matches);
        }
        found.extend(matches);
    });
    found
}

/// `2 email addresses and 1 card number`, for messages (never the text itself).
fn describe(found: &[guardrails::Match]) -> String {
    let mut counts: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for m in found {
        *counts.entry(m.detector.label()).or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(label, n)| format!("{n} × {label}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A header value Paved passes on: printable ASCII, short.
fn valid_header_token(v: &str) -> bool {
    !v.is_empty() && v.len() <= 256 && v.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Deletes idempotency records past the retention window, hourly, by the
/// ledger's clock (the one their `created_at` was written by).
async fn retention(
    pool: SqlitePool,
    clock: Arc<dyn Clock>,
    leader: paved_store::leader::Leadership,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        // One replica reminds and deletes for the fleet (a reminder goes out once).
        if !leader.is_leader() {
            continue;
        }
        match settings::remind_key_rotations(&pool, crate::now_unix()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                teams = n,
                "reminded teams to rotate their LLM provider keys"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot check provider keys' ages"),
        }
        match settings::purge_request_logs(&pool, clock.now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                deleted = n,
                "request logs past their team's retention deleted"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot delete old request logs"),
        }
        let cutoff = clock.now_ms() - crate::budgets::IDEMPOTENCY_RETENTION_MS;
        let result = sqlx::query!(
            "DELETE FROM llm_reservations WHERE state != 'held' AND created_at < ?1",
            cutoff
        )
        .execute(&pool)
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot prune old idempotency records");
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn images_are_held_at_their_ceiling_and_unboundable_parts_refused() {
        use serde_json::json;
        let plain = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(super::media_token_ceiling(&plain), Ok(0));
        let two = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "compare"},
            {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        ]}]});
        assert_eq!(
            super::media_token_ceiling(&two),
            Ok(2 * super::IMAGE_TOKEN_CEILING)
        );
        let audio = json!({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]});
        assert!(super::media_token_ceiling(&audio)
            .unwrap_err()
            .contains("input_audio"));
    }
    use super::*;

    #[test]
    fn trace_context_keeps_a_valid_callers_trace_and_replaces_junk() {
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::from_headers(Some(tp), None);
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = t.child();
        assert!(child.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(child.ends_with("-01"));
        assert_ne!(child, tp);
        let junk = TraceContext::from_headers(Some("00-zz-00-01"), None);
        assert_eq!(junk.trace_id.len(), 32);
        assert_ne!(junk.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn usage_is_read_from_openai_and_anthropic_shapes() {
        assert_eq!(
            usage_of(&json!({"usage": {"prompt_tokens": 3, "completion_tokens": 4}})),
            Some((3, 4))
        );
        assert_eq!(
            usage_of(&json!({"usage": {"prompt_tokens": 3, "total_tokens": 3}})),
            Some((3, 0))
        );
        assert_eq!(usage_of(&json!({"usage": null})), None);
    }
}
