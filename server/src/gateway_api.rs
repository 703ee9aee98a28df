//! `/llm/v1`: the OpenAI-compatible gateway (chat completions, the Responses
//! API, embeddings), and `/llm/anthropic/v1`: Anthropic's Messages API.
//! Callers authenticate with a team's gateway key (`Authorization: Bearer
//! pvg_…`, or Anthropic's `x-api-key: pvg_…`), not a session, so these routes
//! sit outside the portal's session and sign-in layers.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use paved_core::gateway::{Call, Operation, Reply, ReplyBody};

use crate::AppState;

/// The gateway routes (mounted at `/llm/v1`), with the configured body limit.
pub fn routes(max_body_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/chat/completions", post(chat))
        .route("/responses", post(responses))
        .route("/embeddings", post(embeddings))
        .route("/models", get(models))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

/// Anthropic's API (mounted at `/llm/anthropic/v1`), answering in Anthropic's shapes.
pub fn anthropic_routes(max_body_bytes: usize) -> Router<AppState> {
    Router::new()
        .route("/messages", post(messages))
        .route("/models", get(anthropic_models))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The gateway key as Anthropic's SDKs send it (`x-api-key`), else a bearer token.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or_else(|| bearer(headers))
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Turns the gateway's reply into an HTTP response.
pub fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let body = match reply.body {
        ReplyBody::Full(bytes) => Body::from(bytes),
        ReplyBody::Stream(stream) => Body::from_stream(stream),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&reply.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}

async fn call(
    state: AppState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    operation: Operation,
) -> Response {
    let gateway = &state.core.gateway;
    let credential = if operation == Operation::Messages {
        api_key(&headers)
    } else {
        bearer(&headers)
    };
    let key = match gateway.authenticate(credential).await {
        Ok(key) => key,
        Err(reply) => return respond(reply),
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status().as_u16();
            let message = if status == 413 {
                format!(
                    "The request body is larger than the gateway's limit of {} bytes.",
                    gateway.max_body_bytes()
                )
            } else {
                rejection.body_text()
            };
            return respond(Reply::error(status, "invalid_request_error", message));
        }
    };
    let reply = gateway
        .handle(
            key,
            Call {
                operation,
                body,
                idempotency_key: text(&headers, "idempotency-key"),
                traceparent: text(&headers, "traceparent"),
                tracestate: text(&headers, "tracestate"),
                feature: text(&headers, "x-paved-feature"),
                anthropic_version: text(&headers, "anthropic-version"),
                anthropic_beta: text(&headers, "anthropic-beta"),
                cache_control: text(&headers, "cache-control"),
            },
        )
        .await;
    respond(reply)
}

async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    call(state, headers, body, Operation::Chat).await
}

async fn responses(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    call(state, headers, body, Operation::Responses).await
}

async fn messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    anthropic_errors(call(state, headers, body, Operation::Messages).await).await
}

async fn anthropic_models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let gateway = &state.core.gateway;
    match gateway.authenticate(api_key(&headers)).await {
        Ok(key) => respond(gateway.anthropic_models_for(&key)),
        Err(reply) => anthropic_errors(respond(reply)).await,
    }
}

/// Paved's own refusals in Anthropic's error shape
/// (`{"type": "error", "error": {"type", "message"}}`), so Anthropic's SDKs
/// raise their usual exceptions; Anthropic's own errors pass unchanged.
async fn anthropic_errors(response: Response) -> Response {
    if response.status().is_success() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if value["type"] == "error" {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let message = if parts.status == StatusCode::UNAUTHORIZED {
        "Send a Paved gateway key as `x-api-key: pvg_…` (team leads create them on the team's Budget page)."
    } else {
        value["error"]["message"]
            .as_str()
            .unwrap_or("request failed")
    };
    let kind = match parts.status.as_u16() {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "invalid_request_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    let body = serde_json::json!({
        "type": "error",
        "error": {"type": kind, "message": message, "paved_code": value["error"]["type"]},
    });
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

async fn embeddings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    call(state, headers, body, Operation::Embeddings).await
}

async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let gateway = &state.core.gateway;
    match gateway.authenticate(bearer(&headers)).await {
        Ok(key) => respond(gateway.models_for(&key)),
        Err(reply) => respond(reply),
    }
}

/// `GET /metrics`: the gateway's Prometheus metrics (platform PMs, admins and service tokens).
pub async fn metrics(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<paved_core::auth::Principal>,
) -> Response {
    if let Err(e) =
        paved_core::auth::authorize(&principal, paved_core::auth::Action::ViewPlatformInsights)
    {
        return crate::error::ApiError::from(e).into_response();
    }
    let rules = paved_core::budgets::load_rules(&state.core.db)
        .await
        .unwrap_or_default();
    let gateway = &state.core.gateway;
    gateway.refresh_gauges(&rules);
    let mut text = gateway.metrics.render();
    let core = &state.core;
    let now = core.budgets.ledger.now_ms() / 1000;
    match paved_core::outcomes::prometheus(core, now).await {
        Ok(dora) => text.push_str(&dora),
        Err(e) => tracing::warn!(error = %e, "the DORA gauges could not be computed"),
    }
    text.push_str(&core.policies.metrics.render());
    match paved_core::outcomes::capabilities::list(core, now).await {
        Ok(c) => text.push_str(&paved_core::outcomes::capabilities::prometheus(&c)),
        Err(e) => tracing::warn!(error = %e, "the SLO gauges could not be computed"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
