//! The platform LLM gateway: an OpenAI-compatible proxy that authenticates
//! gateway keys, enforces team budgets through the two-phase ledger
//! (reserve the worst case, settle to actual usage, void on failure),
//! replays idempotent requests, retries with full jitter, trips circuit
//! breakers, and records metrics, spans and one usage record per request.
//! The HTTP layer (`server`) turns a [`Reply`] into a response.

pub mod breaker;
pub mod config;
pub mod metrics;
pub mod retry;
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
use config::{ModelKind, ModelRoute};
use metrics::GatewayMetrics;

/// The longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// What a caller asked the gateway to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /chat/completions`.
    Chat,
    /// `POST /embeddings`.
    Embeddings,
}

impl Operation {
    /// `gen_ai.operation.name` and the `request_type` label.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Chat => "chat",
            Operation::Embeddings => "embeddings",
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
    credentials: Mutex<HashMap<(String, String), CachedCredential>>,
}

/// A provider key read from Vault (or its absence) and when.
type CachedCredential = (Option<SecretString>, Instant);

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
}

struct Context {
    key: KeyIdentity,
    route: ModelRoute,
    operation: Operation,
    started: Instant,
    trace: TraceContext,
    idempotency: Option<(String, String)>,
    span: tracing::Span,
    /// The product feature the caller named.
    feature: Option<String>,
}

impl Context {
    fn labels(&self) -> [&str; 5] {
        [
            &self.route.provider,
            &self.route.model,
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
fn circuit_open(route: &ModelRoute, wait: Duration) -> Reply {
    let seconds = wait.as_secs().max(1);
    Reply::error(
        503,
        "circuit_open",
        format!(
            "{} / {} is failing, so Paved paused requests to it; retry in {seconds} s.",
            route.provider, route.model
        ),
    )
    .with("retry-after", seconds.to_string())
}

impl Gateway {
    /// Seeds prices on first start, loads them and the ledger, and builds the
    /// upstream client.
    pub async fn start(
        pool: SqlitePool,
        config: Arc<Config>,
        vault: Option<Arc<Vault>>,
        budgets: Arc<Budgets>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, GatewayStartError> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(512)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let gateway = Arc::new(Self {
            budgets,
            breakers: Breakers::new(config.llm.breaker_failures, config.llm.breaker_cooldown),
            metrics: GatewayMetrics::default(),
            config,
            vault,
            pool,
            http,
            credentials: Mutex::default(),
        });
        tokio::spawn(retention(gateway.pool.clone(), clock));
        Ok(gateway)
    }

    /// The configured models.
    pub fn routes(&self) -> impl Iterator<Item = &ModelRoute> {
        self.config.llm.routes.values()
    }

    /// Models that are configured and priced (what a budget may allow).
    pub fn priced_models(&self) -> Vec<String> {
        self.routes()
            .filter(|r| self.budgets.prices.get(&r.provider, &r.model).is_some())
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
            .filter(|r| self.budgets.prices.get(&r.provider, &r.model).is_some())
            .filter(|r| {
                self.budgets
                    .ledger
                    .allows_model(&key.team, &key.workspace, &r.model)
            })
            .map(
                |r| json!({"id": r.model, "object": "model", "created": 0, "owned_by": r.provider}),
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

    /// Handles one chat or embeddings call for `key`.
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
        let wanted = match call.operation {
            Operation::Chat => ModelKind::Chat,
            Operation::Embeddings => ModelKind::Embeddings,
        };
        if route.kind != wanted {
            return Reply::error(
                400,
                "invalid_request_error",
                format!("`{model}` is not a {} model.", call.operation.name()),
            );
        }
        let span = tracing::info_span!(
            "gen_ai",
            otel.name = %format!("{} {}", call.operation.name(), model),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = call.operation.name(),
            gen_ai.provider.name = %route.provider,
            gen_ai.request.model = %model,
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            llm.provider = %route.provider,
            llm.model = %model,
            llm.idempotency_key = Empty,
            error.type = Empty,
            server.address = %route.server_address,
            server.port = route.server_port,
            trace_id = %trace.trace_id,
            paved.team = %key.team,
            paved.workspace_id = %key.workspace,
            paved.feature = feature.as_deref().unwrap_or(""),
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
        let ctx = Context {
            key,
            route,
            operation: call.operation,
            started,
            trace,
            idempotency,
            span: span.clone(),
            feature,
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

    /// One admitted request, in named steps: admit (model, price, idempotency,
    /// worst-case bounds) → reserve the worst case → open the upstream
    /// (breaker, credential) → call with retries → settle to the usage (or the
    /// worst case when the provider may have billed) or void.
    async fn run(self: Arc<Self>, ctx: Context, parsed: Value, body: Bytes) -> Reply {
        let admitted = match self.admit(&ctx, &parsed, body.len()).await {
            Ok(a) => a,
            Err(early) => return early.reply(&self, &ctx),
        };
        drop(body);
        let hold = match self.reserve(&ctx, &admitted).await {
            Ok(hold) => hold,
            Err(e) => return self.refusal(&ctx, e),
        };
        let (permit, credential) = match self.open_upstream(&ctx, &hold).await {
            Ok(opened) => opened,
            Err(reply) => return reply,
        };
        let call = UpstreamCall::new(&ctx, parsed);
        let started = Instant::now();
        match self
            .call_with_retries(&ctx, &hold, &call, permit, credential.as_ref(), &admitted)
            .await
        {
            Ok(response) => {
                self.settle(ctx, hold, &admitted, &call, response, started)
                    .await
            }
            Err(Attempts::CircuitOpen(wait)) => {
                self.void(&ctx, &hold, 503, "circuit_open", started.elapsed());
                circuit_open(&ctx.route, wait)
            }
            Err(Attempts::Failed(failure)) => {
                self.upstream_failed(&ctx, &hold, &admitted, failure, started.elapsed())
            }
        }
    }

    /// Checks what needs no reservation: the model is allowed and priced, an
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
        let Some(price) = self
            .budgets
            .prices
            .get(&ctx.route.provider, &ctx.route.model)
        else {
            return Err(Refusal::ModelNotPriced);
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
        // and every allowed output token used.
        let media_tokens = media_token_ceiling(parsed).map_err(Refusal::UnsupportedContent)?;
        let input_bound = i64::try_from(body_len)
            .unwrap_or(i64::MAX)
            .saturating_add(media_tokens);
        let output_bound = match ctx.operation {
            Operation::Embeddings => 0,
            Operation::Chat => {
                let asked = ["max_completion_tokens", "max_tokens"]
                    .iter()
                    .find_map(|k| parsed.get(*k).and_then(Value::as_i64))
                    .filter(|n| *n > 0)
                    .unwrap_or(ctx.route.max_output_tokens);
                let choices = parsed
                    .get("n")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
                    .clamp(1, 128);
                asked.saturating_mul(choices)
            }
        };
        Ok(Admitted {
            price,
            bounds: (input_bound, output_bound),
        })
    }

    /// Holds the worst case against every budget that applies, atomically.
    async fn reserve(&self, ctx: &Context, admitted: &Admitted) -> Result<Hold, LedgerError> {
        let (input_bound, output_bound) = admitted.bounds;
        self.budgets
            .ledger
            .reserve(ReserveRequest {
                id: uuid::Uuid::new_v4().to_string(),
                team: ctx.key.team.clone(),
                workspace: ctx.key.workspace.clone(),
                model: ctx.route.model.clone(),
                amount_nanocents: admitted.price.cost(input_bound, output_bound),
                estimated_tokens: input_bound / 4 + 1,
                idempotency: ctx.idempotency.clone(),
            })
            .await
    }

    /// The breaker's permission and the provider credential; on refusal the
    /// hold is voided.
    async fn open_upstream(
        &self,
        ctx: &Context,
        hold: &Hold,
    ) -> Result<(Permit, Option<SecretString>), Reply> {
        let permit = self
            .breakers
            .acquire(&ctx.route.provider, &ctx.route.model, Instant::now())
            .map_err(|wait| {
                self.void(ctx, hold, 503, "circuit_open", Duration::ZERO);
                circuit_open(&ctx.route, wait)
            })?;
        match self.credential(&ctx.key.team, &ctx.route).await {
            Ok(credential) => Ok((permit, credential)),
            Err(message) => {
                self.breakers
                    .release(&ctx.route.provider, &ctx.route.model, permit);
                self.void(ctx, hold, 502, "unauthorized", Duration::ZERO);
                Err(Reply::error(502, "upstream_credential_error", message))
            }
        }
    }

    /// Calls the provider, retrying retryable answers and connection errors
    /// with jitter (a timed-out generation only with an idempotency key), and
    /// records each outcome with the circuit breaker.
    async fn call_with_retries(
        &self,
        ctx: &Context,
        hold: &Hold,
        call: &UpstreamCall,
        permit: Permit,
        credential: Option<&SecretString>,
        admitted: &Admitted,
    ) -> Result<reqwest::Response, Attempts> {
        let (_, output_bound) = admitted.bounds;
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
            if let Some(secret) = credential {
                request = request.bearer_auth(secret.expose_secret());
            }
            let result = request.send().await;
            let (wait, reason, failure) = match result {
                Ok(response) if response.status().is_success() => {
                    self.breakers.record(
                        &ctx.route.provider,
                        &ctx.route.model,
                        permit,
                        true,
                        Instant::now(),
                    );
                    return Ok(response);
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let body = response.bytes().await.unwrap_or_default();
                    let retryable = retry::is_retryable(status, &body);
                    let wait = retry::server_wait(&headers, std::time::SystemTime::now());
                    let failure = status >= 500;
                    if !retryable || attempt >= self.config.llm.max_retries || permit.probe {
                        self.breakers.record(
                            &ctx.route.provider,
                            &ctx.route.model,
                            permit,
                            !failure,
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
                    (wait, status.to_string(), failure)
                }
                Err(e) => {
                    let timeout = e.is_timeout();
                    tracing::warn!(error = %e, attempt, "upstream call failed");
                    // A generation that timed out may still run (and be billed):
                    // without an idempotency key, running it again could bill it twice.
                    let no_retry = timeout && ctx.idempotency.is_none();
                    if attempt >= self.config.llm.max_retries || permit.probe || no_retry {
                        if timeout && output_bound > CALLER_SIZED_OUTPUT_TOKENS {
                            // The caller asked for a long generation: its timeout
                            // says nothing about the provider's health.
                            self.breakers
                                .release(&ctx.route.provider, &ctx.route.model, permit);
                        } else {
                            self.breakers.record(
                                &ctx.route.provider,
                                &ctx.route.model,
                                permit,
                                false,
                                Instant::now(),
                            );
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
            self.breakers.record(
                &ctx.route.provider,
                &ctx.route.model,
                permit,
                !failure,
                Instant::now(),
            );
            self.metrics
                .retries
                .add(&[&ctx.route.provider, &ctx.route.model, &reason], 1.0);
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
                .acquire(&ctx.route.provider, &ctx.route.model, Instant::now())
                .map_err(Attempts::CircuitOpen)?;
        }
    }

    /// The answer when every attempt failed: a timeout costs the reserved
    /// worst case (the provider may have run and billed it); other failures
    /// void the hold.
    fn upstream_failed(
        &self,
        ctx: &Context,
        hold: &Hold,
        admitted: &Admitted,
        failure: UpstreamFailure,
        upstream: Duration,
    ) -> Reply {
        match failure {
            UpstreamFailure::Timeout => {
                self.charge(
                    ctx,
                    hold,
                    admitted.price,
                    None,
                    admitted.bounds,
                    504,
                    Some("timeout"),
                    upstream,
                    None,
                );
                Reply::error(
                    504,
                    "timeout",
                    format!(
                        "{} did not answer within {} s.",
                        ctx.route.provider,
                        self.config.llm.timeout.as_secs()
                    ),
                )
            }
            UpstreamFailure::Connect(e) => {
                self.void(ctx, hold, 502, "upstream_5xx", upstream);
                Reply::error(
                    502,
                    "upstream_unreachable",
                    format!("Paved cannot reach {}: {e}", ctx.route.provider),
                )
            }
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
                self.void(ctx, hold, status, error_type, upstream);
                if matches!(status, 401 | 403) {
                    // The platform's credential was refused, not the caller's
                    // key. The provider's text (which may describe the key)
                    // goes to the log, not to the caller.
                    tracing::warn!(
                        provider = %ctx.route.provider,
                        model = %ctx.route.model,
                        status,
                        message = %provider_message.escape_debug(),
                        "the provider refused the platform's credential"
                    );
                    return Reply::error(
                        502,
                        "upstream_credential_error",
                        format!(
                            "{} refused the platform's credential for {}; the platform team has been told in the log.",
                            ctx.route.provider, ctx.route.model
                        ),
                    );
                }
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
    /// the worst case.
    async fn settle(
        self: Arc<Self>,
        ctx: Context,
        hold: Hold,
        admitted: &Admitted,
        call: &UpstreamCall,
        response: reqwest::Response,
        started: Instant,
    ) -> Reply {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_owned();
        if call.streaming && content_type.starts_with("text/event-stream") {
            return stream::metered(
                self.clone(),
                ctx,
                hold,
                admitted.price,
                admitted.bounds,
                response,
                call.client_wants_usage,
                started,
            );
        }
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                // The provider may have billed: charge the worst case rather than nothing.
                tracing::warn!(error = %e, "upstream body failed mid-way");
                self.charge(
                    &ctx,
                    &hold,
                    admitted.price,
                    None,
                    admitted.bounds,
                    502,
                    Some("upstream_5xx"),
                    started.elapsed(),
                    None,
                );
                return Reply::error(
                    502,
                    "upstream_error",
                    format!("{} broke off its answer.", ctx.route.provider),
                );
            }
        };
        let upstream = started.elapsed();
        let usage = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
            if let Some(m) = v.get("model").and_then(Value::as_str) {
                ctx.span.record("gen_ai.response.model", m);
            }
            usage_of(&v)
        });
        let stored = ctx.idempotency.as_ref().map(|_| StoredResponse {
            status,
            content_type: content_type.clone(),
            body: body.clone(),
        });
        let remaining = self.charge(
            &ctx,
            &hold,
            admitted.price,
            usage,
            admitted.bounds,
            status,
            None,
            upstream,
            stored,
        );
        let mut reply = Reply {
            status,
            content_type,
            headers: Vec::new(),
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
        let (reply, error_type) = match &error {
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
        };
        self.refuse(ctx, reply, error_type)
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
            provider: ctx.route.provider.clone(),
            model: ctx.route.model.clone(),
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
    async fn credential(
        &self,
        team: &str,
        route: &ModelRoute,
    ) -> Result<Option<SecretString>, String> {
        let cache_key = (team.to_owned(), route.provider.clone());
        if let Some((value, at)) = self
            .credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&cache_key)
        {
            if at.elapsed() < self.config.llm.credential_ttl {
                return Ok(value.clone());
            }
        }
        let Some(vault) = &self.vault else {
            return match &route.credential {
                None => Ok(None),
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
        self.credentials
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(cache_key, (found.clone(), Instant::now()));
        Ok(found)
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
        for route in self.routes() {
            m.circuit.set(&[&route.provider, &route.model], 0.0);
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

/// What admission found: the price and the worst case (prompt, completion tokens).
struct Admitted {
    price: Price,
    bounds: (i64, i64),
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
                        ctx.route.model, ctx.route.provider
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
        };
        gateway.refuse(ctx, reply, error_type)
    }
}

/// The request as the provider gets it.
struct UpstreamCall {
    url: String,
    body: Bytes,
    streaming: bool,
    /// Whether the caller asked for usage in the stream (Paved always does).
    client_wants_usage: bool,
}

impl UpstreamCall {
    /// The caller's body with the provider's model name, asking a stream for
    /// its usage (the ledger needs it).
    fn new(ctx: &Context, parsed: Value) -> Self {
        let mut body = parsed;
        let mut client_wants_usage = true;
        if let Some(obj) = body.as_object_mut() {
            obj.insert(
                "model".into(),
                Value::String(ctx.route.upstream_model.clone()),
            );
            if ctx.operation == Operation::Chat && obj.get("stream") == Some(&Value::Bool(true)) {
                let options = obj.entry("stream_options").or_insert_with(|| json!({}));
                if let Some(options) = options.as_object_mut() {
                    client_wants_usage = options.get("include_usage") == Some(&Value::Bool(true));
                    options.insert("include_usage".into(), Value::Bool(true));
                }
            }
        }
        let streaming = body.get("stream") == Some(&Value::Bool(true));
        let url = format!(
            "{}/{}",
            ctx.route.base_url,
            match ctx.operation {
                Operation::Chat => "chat/completions",
                Operation::Embeddings => "embeddings",
            }
        );
        UpstreamCall {
            url,
            body: Bytes::from(body.to_string()),
            streaming,
            client_wants_usage,
        }
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

async fn read_field(
    vault: &Vault,
    path: &str,
    field: &str,
) -> Result<Option<SecretString>, String> {
    let secret = vault
        .read_kv(path)
        .await
        .map_err(|e| format!("cannot read the provider key from Vault: {e}"))?;
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

/// Deletes idempotency records past the retention window, hourly, by the
/// ledger's clock (the one their `created_at` was written by).
async fn retention(pool: SqlitePool, clock: Arc<dyn Clock>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
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
