//! A local LLM upstream for tests and benchmarks that speaks three provider
//! APIs.
//!
//! - **OpenAI Chat Completions**: `POST /v1/chat/completions` (JSON and
//!   server-sent-event streaming), plus `POST /v1/embeddings` and
//!   `GET /v1/models`. Clients point at `http://{addr}/v1`.
//! - **Anthropic Messages**: `POST /v1/messages` (JSON and Anthropic's typed
//!   SSE events), authenticated with `x-api-key` and requiring the
//!   `anthropic-version` header. Clients point at `http://{addr}` (Anthropic's
//!   base URL has no `/v1`). A request with `tools` whose last user message
//!   mentions "weather" is answered with a `tool_use` block.
//! - **OpenAI Responses**: `POST /v1/responses` (JSON and typed SSE events with
//!   `sequence_number`s).
//!
//! Tests script the stub with [`Behaviour`]s — one-shot ones queued with
//! [`Stub::push`] and a fallback set with [`Stub::set_default`] — and inspect
//! what arrived with [`Stub::requests`]. A behaviour sets the HTTP status (and
//! with it the provider's error body), a delay, the reported token usage, and
//! can shape streams: [`Behaviour::without_usage`] drops usage reporting and
//! [`Behaviour::cut_after`] breaks a stream off mid-body. The same controls are
//! reachable over HTTP under `/_stub/` for out-of-process use (the
//! `paved-llm-stub` binary).
//!
//! The default `200` path is kept cheap: one mutex acquisition per request, no
//! per-request logging, and a bounded request log
//! ([`MAX_LOGGED_REQUESTS`]).
//!
//! ```no_run
//! # async fn demo() {
//! use paved_llm_stub::{spawn, Behaviour, Stub};
//!
//! let stub = Stub::new().require_key("sk-test");
//! stub.push(Behaviour::status(429).with_retry_after("1"));
//! stub.push(Behaviour::ok().with_usage(12, 5).cut_after(3));
//! let addr = spawn(stub.clone()).await;
//! // Point an OpenAI client at format!("http://{addr}/v1"), an Anthropic
//! // client at format!("http://{addr}") ...
//! assert_eq!(stub.count(), 0);
//! # }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use bytes::Bytes;
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;

mod anthropic;
mod responses;

/// How many requests [`Stub::requests`] keeps; older entries are dropped.
pub const MAX_LOGGED_REQUESTS: usize = 10_000;

/// The assistant text every successful answer carries (chat completions,
/// messages and responses alike).
pub const REPLY: &str = "Hello from the stub.";

/// The model ids listed by `GET /v1/models`.
pub const MODELS: &[&str] = &[
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "stub-model",
    "claude-sonnet-4-5",
    "claude-haiku-4-5",
];

/// Model echoed back when a request does not name one.
const FALLBACK_MODEL: &str = "stub-model";

/// Number of dimensions in every embedding vector.
const EMBEDDING_DIMS: usize = 8;

/// What the stub does with one request to a `/v1` endpoint.
///
/// Deserialises with `#[serde(default)]`, so control calls may send partial
/// JSON such as `{"status":429,"retry_after":"2"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Behaviour {
    /// HTTP status to answer with; anything other than `200` produces the
    /// provider's error body (OpenAI's, or Anthropic's on `/v1/messages`).
    pub status: u16,
    /// Milliseconds to wait before answering. For streams this is the time to
    /// the first byte, and events are then spaced `delay_ms / 4` apart.
    pub delay_ms: u64,
    /// Value of the `retry-after` header on error answers.
    pub retry_after: Option<String>,
    /// Value of the `retry-after-ms` header on error answers.
    pub retry_after_ms: Option<String>,
    /// Input (prompt) tokens reported on success.
    pub prompt_tokens: i64,
    /// Output (completion) tokens reported on success (not by embeddings).
    pub completion_tokens: i64,
    /// On error answers: OpenAI's `error.code` (`null` when unset), or
    /// Anthropic's `error.type` (which otherwise follows the status).
    pub error_code: Option<String>,
    /// On error answers: the `error.message` of every API, replacing the
    /// default `stub error <status>`.
    pub error_message: Option<String>,
    /// Report no usage at all: JSON answers have no `usage` field and streams
    /// carry no token counts (no chat usage chunk even when asked for, empty
    /// `usage` objects in Anthropic's `message_start` and `message_delta`, no
    /// `usage` in the Responses API's `response.completed`).
    pub omit_usage: bool,
    /// Break a stream off after this many SSE events: the body then fails
    /// instead of ending, so the connection is dropped without the chunked
    /// terminator and the client sees a body error. If the stream has no
    /// more events than this, all are sent before the break. JSON answers
    /// are unaffected.
    pub cut_after_chunks: Option<u32>,
    /// The assistant's text in chat completions instead of [`REPLY`]
    /// (streamed as one chunk).
    pub reply: Option<String>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            status: 200,
            delay_ms: 0,
            retry_after: None,
            retry_after_ms: None,
            prompt_tokens: 10,
            completion_tokens: 20,
            error_code: None,
            error_message: None,
            omit_usage: false,
            cut_after_chunks: None,
            reply: None,
        }
    }
}

impl Behaviour {
    /// A plain, immediate `200` answer (same as [`Behaviour::default`]).
    pub fn ok() -> Self {
        Self::default()
    }

    /// An immediate answer with the given HTTP status.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    /// Waits `delay_ms` milliseconds before answering.
    pub fn with_delay_ms(mut self, delay_ms: u64) -> Self {
        self.delay_ms = delay_ms;
        self
    }

    /// Sends `retry-after: <value>` on error answers.
    pub fn with_retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }

    /// Sends `retry-after-ms: <value>` on error answers.
    pub fn with_retry_after_ms(mut self, value: &str) -> Self {
        self.retry_after_ms = Some(value.to_owned());
        self
    }

    /// Reports the given prompt (input) and completion (output) token counts.
    pub fn with_usage(mut self, prompt_tokens: i64, completion_tokens: i64) -> Self {
        self.prompt_tokens = prompt_tokens;
        self.completion_tokens = completion_tokens;
        self
    }

    /// Answers chat completions with `text`.
    pub fn with_reply(mut self, text: &str) -> Self {
        self.reply = Some(text.to_owned());
        self
    }

    /// Sets OpenAI's `error.code`, or Anthropic's `error.type`, on error
    /// answers.
    pub fn with_error_code(mut self, code: &str) -> Self {
        self.error_code = Some(code.to_owned());
        self
    }

    /// Sets `error.message` on error answers (all APIs).
    pub fn with_error_message(mut self, message: &str) -> Self {
        self.error_message = Some(message.to_owned());
        self
    }

    /// Reports no usage, in JSON answers and streams alike (see
    /// [`Behaviour::omit_usage`]).
    pub fn without_usage(mut self) -> Self {
        self.omit_usage = true;
        self
    }

    /// Breaks a stream off after `events` SSE events (see
    /// [`Behaviour::cut_after_chunks`]).
    pub fn cut_after(mut self, events: u32) -> Self {
        self.cut_after_chunks = Some(events);
        self
    }

    /// The `error.message` for an error answer.
    fn message(&self) -> String {
        self.error_message
            .clone()
            .unwrap_or_else(|| format!("stub error {}", self.status))
    }
}

/// One request to a scripted `/v1` endpoint (chat completions, embeddings,
/// messages or responses) as the stub received it.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The `authorization` header, if sent.
    pub authorization: Option<String>,
    /// The `traceparent` header, if sent.
    pub traceparent: Option<String>,
    /// The `idempotency-key` header, if sent.
    pub idempotency_key: Option<String>,
    /// The `x-request-id` header, if sent.
    pub x_request_id: Option<String>,
    /// The `x-api-key` header (Anthropic's key header), if sent.
    pub x_api_key: Option<String>,
    /// The `anthropic-version` header, if sent.
    pub anthropic_version: Option<String>,
    /// The JSON body; a JSON string holding the raw text if it did not parse.
    pub body: Value,
    /// When the request arrived (monotonic; not serialised).
    #[serde(skip)]
    pub at: Instant,
    /// When the request arrived, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// A handle on a stub upstream: cheap to clone, all clones share state.
#[derive(Clone)]
pub struct Stub {
    shared: Arc<Mutex<Shared>>,
    /// The key callers must present, if one is required.
    key: Option<Arc<str>>,
}

struct Shared {
    queue: VecDeque<Behaviour>,
    default: Behaviour,
    log: VecDeque<Seen>,
    count: u64,
    /// Keys accepted instead of the one given to [`Stub::require_key`]
    /// (set at run time with [`Stub::accept_keys`]).
    accepted: Option<Vec<String>>,
}

impl Default for Stub {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Stub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.lock();
        f.debug_struct("Stub")
            .field("requires_key", &self.key.is_some())
            .field("queued", &shared.queue.len())
            .field("default", &shared.default)
            .field("count", &shared.count)
            .finish()
    }
}

impl Stub {
    /// A stub that answers `200` to everything and accepts any (or no) key.
    pub fn new() -> Stub {
        Stub {
            shared: Arc::new(Mutex::new(Shared {
                queue: VecDeque::new(),
                default: Behaviour::default(),
                log: VecDeque::new(),
                count: 0,
                accepted: None,
            })),
            key: None,
        }
    }

    /// Requires the key on the `/v1` endpoints, presented the way each
    /// provider expects: `Authorization: Bearer <key>` for the OpenAI
    /// endpoints (else an OpenAI-style `401 invalid_api_key`) and
    /// `x-api-key: <key>` for `/v1/messages` (else Anthropic's
    /// `401 authentication_error`). Applies to this handle and clones made
    /// from it afterwards (pass it to [`router`]).
    pub fn require_key(mut self, key: &str) -> Self {
        self.key = Some(Arc::from(key));
        self
    }

    /// From now on accepts exactly `keys` (a provider activating a rotated
    /// key, or revoking an old one). Only for a stub that requires a key.
    pub fn accept_keys(&self, keys: &[&str]) {
        self.lock().accepted = Some(keys.iter().map(|k| (*k).to_owned()).collect());
    }

    /// Queues a one-shot behaviour; queued behaviours are consumed in FIFO
    /// order by the next admitted `/v1` requests (chat completions,
    /// embeddings, messages, responses), then the default applies.
    pub fn push(&self, behaviour: Behaviour) {
        self.lock().queue.push_back(behaviour);
    }

    /// Sets the behaviour used when the queue is empty.
    pub fn set_default(&self, behaviour: Behaviour) {
        self.lock().default = behaviour;
    }

    /// The `/v1` requests (other than `GET /v1/models`) received since the
    /// last [`Stub::reset`], rejected ones included, oldest first (at most
    /// the last [`MAX_LOGGED_REQUESTS`]).
    pub fn requests(&self) -> Vec<Seen> {
        self.lock().log.iter().cloned().collect()
    }

    /// How many such `/v1` requests arrived since the last
    /// [`Stub::reset`] (not capped like [`Stub::requests`]).
    pub fn count(&self) -> usize {
        usize::try_from(self.lock().count).unwrap_or(usize::MAX)
    }

    /// Clears the queue, the request log and the count. The default
    /// behaviour is kept; set it again with [`Stub::set_default`] if needed.
    pub fn reset(&self) {
        let mut shared = self.lock();
        shared.queue.clear();
        shared.log.clear();
        shared.count = 0;
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn authorized(&self, headers: &HeaderMap, via: KeyHeader) -> bool {
        let Some(key) = &self.key else {
            return true;
        };
        let presented = match via {
            KeyHeader::Bearer => headers
                .get(AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer ")),
            KeyHeader::XApiKey => headers.get("x-api-key").map(HeaderValue::as_bytes),
        };
        if let Some(accepted) = &self.lock().accepted {
            return presented.is_some_and(|p| accepted.iter().any(|k| k.as_bytes() == p));
        }
        presented == Some(key.as_bytes())
    }

    /// Logs the request and picks its behaviour, all under one lock.
    /// `Ok((n, behaviour))` where `n` numbers the request from 1; `Err` is an
    /// auth or validation failure (which consumes no behaviour).
    fn admit(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Value,
        invalid: Option<&'static str>,
        via: KeyHeader,
    ) -> Result<(u64, Behaviour), Rejected> {
        let authorized = self.authorized(headers, via);
        let seen = Seen {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            authorization: header_string(headers, AUTHORIZATION.as_str()),
            traceparent: header_string(headers, "traceparent"),
            idempotency_key: header_string(headers, "idempotency-key"),
            x_request_id: header_string(headers, "x-request-id"),
            x_api_key: header_string(headers, "x-api-key"),
            anthropic_version: header_string(headers, "anthropic-version"),
            body,
            at: Instant::now(),
            at_unix_ms: unix_ms(),
        };
        let proceed = authorized && invalid.is_none();
        let (n, behaviour, evicted) = {
            let mut guard = self.lock();
            let shared = &mut *guard;
            shared.count += 1;
            let evicted = if shared.log.len() >= MAX_LOGGED_REQUESTS {
                shared.log.pop_front()
            } else {
                None
            };
            shared.log.push_back(seen);
            let behaviour = proceed.then(|| {
                shared
                    .queue
                    .pop_front()
                    .unwrap_or_else(|| shared.default.clone())
            });
            (shared.count, behaviour, evicted)
        };
        // Free the evicted entry outside the lock.
        drop(evicted);
        if !authorized {
            return Err(Rejected::Unauthorized);
        }
        match behaviour {
            Some(behaviour) => Ok((n, behaviour)),
            None => Err(Rejected::Invalid(invalid.unwrap_or("invalid request"))),
        }
    }
}

/// Which header carries the caller's key when [`Stub::require_key`] is set.
#[derive(Clone, Copy)]
enum KeyHeader {
    /// `Authorization: Bearer <key>` (OpenAI).
    Bearer,
    /// `x-api-key: <key>` (Anthropic).
    XApiKey,
}

/// Why [`Stub::admit`] turned a request away. Converts into OpenAI's error
/// answer; the `anthropic` module has its own conversion.
enum Rejected {
    Unauthorized,
    Invalid(&'static str),
}

impl IntoResponse for Rejected {
    fn into_response(self) -> Response {
        match self {
            Rejected::Unauthorized => invalid_api_key(),
            Rejected::Invalid(message) => openai_error(
                StatusCode::BAD_REQUEST,
                message,
                "invalid_request_error",
                None,
            ),
        }
    }
}

/// The stub's HTTP routes: `/v1/...` (chat completions, embeddings, models,
/// messages, responses) plus the `/_stub/...` controls.
pub fn router(stub: Stub) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/responses", post(responses::responses))
        .route("/_stub/push", post(control_push))
        .route("/_stub/default", post(control_default))
        .route("/_stub/reset", post(control_reset))
        .route("/_stub/requests", get(control_requests))
        .route("/_stub/count", get(control_count))
        .fallback(not_found)
        .with_state(stub)
}

/// Serves the stub on `listener` until the server fails.
pub async fn serve(listener: TcpListener, stub: Stub) {
    let listener = listener.tap_io(|tcp| {
        // Best effort: lets streamed chunks leave immediately.
        let _ = tcp.set_nodelay(true);
    });
    if let Err(err) = axum::serve(listener, router(stub)).await {
        tracing::error!(%err, "llm stub server stopped");
    }
}

/// Binds `127.0.0.1:0`, serves the stub on a task of the current tokio
/// runtime and returns the bound address.
///
/// # Panics
///
/// If no local port can be bound.
pub async fn spawn(stub: Stub) -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("bind 127.0.0.1:0 for the llm stub");
    let addr = listener
        .local_addr()
        .expect("local address of the llm stub listener");
    tokio::spawn(serve(listener, stub));
    addr
}

// ---------------------------------------------------------------------------
// /v1 handlers

#[derive(Serialize)]
struct Usage {
    prompt_tokens: i64,
    completion_tokens: i64,
    total_tokens: i64,
}

impl Usage {
    fn of(b: &Behaviour) -> Self {
        Self {
            prompt_tokens: b.prompt_tokens,
            completion_tokens: b.completion_tokens,
            total_tokens: b.prompt_tokens.saturating_add(b.completion_tokens),
        }
    }
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'a str,
    content: &'a str,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: Message<'a>,
    finish_reason: &'a str,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'a str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'a str,
    created: u64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

async fn chat_completions(
    State(stub): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let (body, invalid) = parse_body(&raw);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(FALLBACK_MODEL)
        .to_owned();
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    let include_usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);

    let admitted = stub.admit(&method, &uri, &headers, body, invalid, KeyHeader::Bearer);
    let (n, behaviour) = match admitted {
        Ok(admitted) => admitted,
        Err(rejected) => return rejected.into_response(),
    };
    if behaviour.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(behaviour.delay_ms)).await;
    }
    if behaviour.status != 200 {
        return behaviour_error(&behaviour);
    }

    let id = format!("chatcmpl-stub-{n}");
    let created = unix_secs();
    if !streaming {
        let completion = Completion {
            id: &id,
            object: "chat.completion",
            created,
            model: &model,
            choices: [CompletionChoice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: behaviour.reply.as_deref().unwrap_or(REPLY),
                },
                finish_reason: "stop",
            }],
            usage: (!behaviour.omit_usage).then(|| Usage::of(&behaviour)),
        };
        return json_bytes(StatusCode::OK, to_json(&completion));
    }

    let chunk = |role, content, finish_reason| Chunk {
        id: &id,
        object: "chat.completion.chunk",
        created,
        model: &model,
        choices: vec![ChunkChoice {
            index: 0,
            delta: Delta { role, content },
            finish_reason,
        }],
        usage: None,
    };
    let mut events = Vec::with_capacity(5);
    events.push(sse_event(&chunk(Some("assistant"), Some(""), None)));
    if let Some(reply) = behaviour.reply.as_deref() {
        events.push(sse_event(&chunk(None, Some(reply), Some("stop"))));
    } else {
        events.push(sse_event(&chunk(None, Some("Hello"), None)));
        events.push(sse_event(&chunk(
            None,
            Some(" from the stub."),
            Some("stop"),
        )));
    }
    if include_usage && !behaviour.omit_usage {
        events.push(sse_event(&Chunk {
            choices: Vec::new(),
            usage: Some(Usage::of(&behaviour)),
            ..chunk(None, None, None)
        }));
    }
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    sse_response(events, &behaviour)
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: [f32; EMBEDDING_DIMS],
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: i64,
    total_tokens: i64,
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'a str,
    data: Vec<Embedding>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<EmbeddingUsage>,
}

async fn embeddings(
    State(stub): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let (body, mut invalid) = parse_body(&raw);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(FALLBACK_MODEL)
        .to_owned();
    // Vectors depend only on the input text, so equal inputs embed equally.
    let seeds: Vec<u64> = match body.get("input") {
        Some(Value::String(s)) => vec![fnv1a(s.as_bytes())],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| match item {
                Value::String(s) => fnv1a(s.as_bytes()),
                other => fnv1a(other.to_string().as_bytes()),
            })
            .collect(),
        _ => {
            if invalid.is_none() {
                invalid = Some("'input' must be a string or a non-empty array");
            }
            Vec::new()
        }
    };

    let admitted = stub.admit(&method, &uri, &headers, body, invalid, KeyHeader::Bearer);
    let (_, behaviour) = match admitted {
        Ok(admitted) => admitted,
        Err(rejected) => return rejected.into_response(),
    };
    if behaviour.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(behaviour.delay_ms)).await;
    }
    if behaviour.status != 200 {
        return behaviour_error(&behaviour);
    }

    let list = EmbeddingList {
        object: "list",
        data: seeds
            .into_iter()
            .enumerate()
            .map(|(index, seed)| Embedding {
                object: "embedding",
                index,
                embedding: embed(seed),
            })
            .collect(),
        model: &model,
        usage: (!behaviour.omit_usage).then_some(EmbeddingUsage {
            prompt_tokens: behaviour.prompt_tokens,
            total_tokens: behaviour.prompt_tokens,
        }),
    };
    json_bytes(StatusCode::OK, to_json(&list))
}

async fn models(State(stub): State<Stub>, headers: HeaderMap) -> Response {
    if !stub.authorized(&headers, KeyHeader::Bearer) {
        return invalid_api_key();
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| {
            json!({
                "id": id,
                "object": "model",
                "created": 1_700_000_000,
                "owned_by": "stub",
            })
        })
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn not_found(method: Method, uri: Uri) -> Response {
    openai_error(
        StatusCode::NOT_FOUND,
        &format!("Unknown request URL: {method} {}", uri.path()),
        "invalid_request_error",
        Some("unknown_url"),
    )
}

// ---------------------------------------------------------------------------
// /_stub control handlers (no auth)

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<Behaviour>),
    One(Behaviour),
}

/// Parses a control body; an empty body means `Behaviour::default()`.
fn parse_control<T: for<'de> Deserialize<'de>>(
    raw: &Bytes,
    empty: T,
) -> Result<T, serde_json::Error> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(empty);
    }
    serde_json::from_slice(raw)
}

fn bad_control_body(err: &serde_json::Error) -> Response {
    openai_error(
        StatusCode::BAD_REQUEST,
        &format!("invalid behaviour JSON: {err}"),
        "invalid_request_error",
        None,
    )
}

async fn control_push(State(stub): State<Stub>, raw: Bytes) -> Response {
    let behaviours = match parse_control(&raw, OneOrMany::One(Behaviour::default())) {
        Ok(OneOrMany::One(b)) => vec![b],
        Ok(OneOrMany::Many(bs)) => bs,
        Err(err) => return bad_control_body(&err),
    };
    let pushed = behaviours.len();
    let queued = {
        let mut shared = stub.lock();
        shared.queue.extend(behaviours);
        shared.queue.len()
    };
    Json(json!({"pushed": pushed, "queued": queued})).into_response()
}

async fn control_default(State(stub): State<Stub>, raw: Bytes) -> Response {
    match parse_control(&raw, Behaviour::default()) {
        Ok(behaviour) => {
            stub.set_default(behaviour);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(err) => bad_control_body(&err),
    }
}

async fn control_reset(State(stub): State<Stub>) -> StatusCode {
    stub.reset();
    StatusCode::NO_CONTENT
}

async fn control_requests(State(stub): State<Stub>) -> Json<Vec<Seen>> {
    Json(stub.requests())
}

async fn control_count(State(stub): State<Stub>) -> Json<usize> {
    Json(stub.count())
}

// ---------------------------------------------------------------------------
// helpers

fn parse_body(raw: &Bytes) -> (Value, Option<&'static str>) {
    match serde_json::from_slice::<Value>(raw) {
        Ok(value @ Value::Object(_)) => (value, None),
        Ok(value) => (value, Some("the request body must be a JSON object")),
        Err(_) => (
            Value::String(String::from_utf8_lossy(raw).into_owned()),
            Some("We could not parse the JSON body of your request."),
        ),
    }
}

/// Whether a header is present with a non-empty value.
fn has_header(headers: &HeaderMap, name: &str) -> bool {
    headers.get(name).is_some_and(|v| !v.is_empty())
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("stub responses always serialise")
}

/// An unnamed server-sent event, `data: <json>` (OpenAI chat completions).
fn sse_event<T: Serialize>(value: &T) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    serde_json::to_writer(&mut out, value).expect("stub chunks always serialise");
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// A named server-sent event, `event: <name>` then `data: <json>` (the
/// Anthropic Messages and OpenAI Responses streams).
fn sse_named<T: Serialize>(name: &str, value: &T) -> Bytes {
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    serde_json::to_writer(&mut out, value).expect("stub events always serialise");
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The error a stream cut by [`Behaviour::cut_after_chunks`] ends with.
fn stream_cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "llm stub: stream cut off (cut_after_chunks)",
    )
}

/// A `text/event-stream` answer sending `events` one by one, spaced
/// `delay_ms / 4` apart, and broken off after
/// [`Behaviour::cut_after_chunks`] events if set.
fn sse_response(mut events: Vec<Bytes>, b: &Behaviour) -> Response {
    let cut = b.cut_after_chunks.is_some();
    if let Some(keep) = b.cut_after_chunks {
        events.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
    }
    let gap = Duration::from_millis(b.delay_ms / 4);
    let items = events
        .into_iter()
        .map(Some)
        .chain(cut.then_some(None))
        .enumerate();
    let body = stream::iter(items).then(move |(i, event)| async move {
        match event {
            Some(event) => {
                if i > 0 && !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
                Ok(event)
            }
            None => {
                // Let hyper flush what was sent before the body fails: the
                // failure drops the connection, buffered bytes included.
                tokio::task::yield_now().await;
                Err(stream_cut())
            }
        }
    });
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Splits `text` into word-sized stream deltas, each but the first starting
/// with its space: `"Hello from"` gives `["Hello", " from"]`.
fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, _) in text.match_indices(' ') {
        if i > start {
            pieces.push(&text[start..i]);
            start = i;
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "code": code}});
    json_bytes(status, to_json(&body))
}

fn invalid_api_key() -> Response {
    openai_error(
        StatusCode::UNAUTHORIZED,
        "Incorrect API key provided",
        "invalid_request_error",
        Some("invalid_api_key"),
    )
}

/// The OpenAI-style error answer for a non-200 [`Behaviour`].
fn behaviour_error(b: &Behaviour) -> Response {
    let status = error_status(b);
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    let mut response = openai_error(status, &b.message(), kind, b.error_code.as_deref());
    retry_headers(&mut response, b);
    response
}

/// The HTTP status of an error answer for `b` (`500` if not a valid
/// non-informational status).
fn error_status(b: &Behaviour) -> StatusCode {
    StatusCode::from_u16(b.status)
        .ok()
        .filter(|s| !s.is_informational())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Adds the `retry-after` / `retry-after-ms` headers scripted on `b`.
fn retry_headers(response: &mut Response, b: &Behaviour) {
    let headers = response.headers_mut();
    if let Some(value) = b.retry_after.as_deref() {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(RETRY_AFTER, value);
        }
    }
    if let Some(value) = b.retry_after_ms.as_deref() {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static("retry-after-ms"), value);
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A deterministic unit vector derived from `seed` (splitmix64).
fn embed(mut seed: u64) -> [f32; EMBEDDING_DIMS] {
    let mut v = [0f64; EMBEDDING_DIMS];
    for x in &mut v {
        seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        *x = (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    }
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f64>()
        .sqrt()
        .max(f64::EPSILON);
    v.map(|x| (x / norm) as f32)
}
