//! HTTP routes.

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{Instrument, field::Empty};

use crate::llm::{self, ChatMessage, GatewayClient};
use crate::telemetry;

/// The longest text `/v1/summarize` accepts, in characters.
pub const MAX_TEXT_CHARS: usize = 100_000;

const SUMMARY_PROMPT: &str = "You summarize text. Answer with a concise summary of at most \
     five sentences, in the language of the text, and nothing else.";

/// Shared state of the handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The LLM gateway client.
    pub gateway: GatewayClient,
}

/// `POST /v1/summarize` body.
#[derive(Debug, Deserialize, Serialize)]
pub struct SummarizeRequest {
    /// The text to summarize.
    pub text: String,
}

/// `POST /v1/summarize` answer.
#[derive(Debug, Deserialize, Serialize)]
pub struct SummarizeResponse {
    /// The summary.
    pub summary: String,
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/summarize", post(summarize))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn summarize(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SummarizeRequest>, JsonRejection>,
) -> Response {
    let span = tracing::info_span!(
        "POST /v1/summarize",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/v1/summarize",
        http.response.status_code = Empty,
    );
    telemetry::set_parent_from(&span, &headers);
    let response = handle_summarize(state, &headers, body)
        .instrument(span.clone())
        .await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

async fn handle_summarize(
    state: AppState,
    headers: &HeaderMap,
    body: Result<Json<SummarizeRequest>, JsonRejection>,
) -> Response {
    let key = match llm::idempotency_key(headers) {
        Ok(key) => key,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let text = match body {
        Ok(Json(request)) => request.text,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    if text.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "text must not be empty");
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("text is longer than {MAX_TEXT_CHARS} characters"),
        );
    }

    let messages = [ChatMessage::system(SUMMARY_PROMPT), ChatMessage::user(text)];
    let mut response = match state.gateway.chat(&messages, &key, headers).await {
        Ok(completion) => Json(SummarizeResponse {
            summary: completion.content.trim().to_owned(),
        })
        .into_response(),
        Err(e) => error(e.status(), e.to_string()),
    };
    // Echo the key so clients that did not send one can retry with it.
    if let Ok(value) = HeaderValue::from_str(&key) {
        response.headers_mut().insert(llm::IDEMPOTENCY_KEY, value);
    }
    response
}
