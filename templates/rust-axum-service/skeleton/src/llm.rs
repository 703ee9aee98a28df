//! Client for the Paved platform LLM gateway (OpenAI-compatible
//! `POST {PAVED_LLM_GATEWAY_URL}/chat/completions`).
//!
//! Every call carries `Authorization: Bearer <key>`, an `Idempotency-Key`
//! (retries reuse it, so the gateway never bills or runs a call twice) and
//! W3C trace context (`traceparent`, `tracestate`).

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use tracing::{Instrument, field::Empty};

use crate::config::{Config, KeySource};
use crate::telemetry;

/// The request header clients use to make a call safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The Idempotency-Key for the gateway call made on behalf of a request: the
/// client's own `Idempotency-Key` when it sent one (so a client retry is also
/// a gateway retry), else a new UUID v4. A handler that makes more than one
/// gateway call per request should suffix the key per call (e.g. `{key}:2`).
pub fn idempotency_key(inbound: &HeaderMap) -> Result<String, String> {
    let Some(value) = inbound.get(IDEMPOTENCY_KEY) else {
        return Ok(uuid::Uuid::new_v4().to_string());
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("Idempotency-Key must be 1 to 255 visible ASCII characters".to_owned());
    }
    Ok(key.to_owned())
}

/// One chat message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system".to_owned(),
            content: content.into(),
        }
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user".to_owned(),
            content: content.into(),
        }
    }
}

/// What the model answered.
#[derive(Clone, Debug)]
pub struct Completion {
    /// The assistant message's text.
    pub content: String,
    /// The model that answered, when the gateway says.
    pub model: Option<String>,
    /// Prompt tokens, when the gateway says.
    pub input_tokens: Option<u64>,
    /// Completion tokens, when the gateway says.
    pub output_tokens: Option<u64>,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No key in the environment nor in the Vault file.
    #[error("{0}")]
    NoKey(String),
    /// The gateway did not answer within the timeout.
    #[error("the LLM gateway did not answer in time")]
    Timeout,
    /// The gateway could not be reached.
    #[error("the LLM gateway could not be reached: {0}")]
    Unreachable(String),
    /// The gateway answered with an error status.
    #[error("the LLM gateway answered {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The gateway's error message, shortened.
        message: String,
    },
    /// The gateway's answer could not be understood.
    #[error("the LLM gateway sent an unexpected answer: {0}")]
    BadResponse(String),
}

impl GatewayError {
    /// The status this service answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::NoKey(_) => StatusCode::SERVICE_UNAVAILABLE,
            GatewayError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Status { status: 429, .. } => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// A short, stable name for the `error.type` span attribute.
    fn kind(&self) -> String {
        match self {
            GatewayError::NoKey(_) => "no_key".to_owned(),
            GatewayError::Timeout => "timeout".to_owned(),
            GatewayError::Unreachable(_) => "unreachable".to_owned(),
            GatewayError::Status { status, .. } => status.to_string(),
            GatewayError::BadResponse(_) => "bad_response".to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct ChatResponse {
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

/// The gateway client; cheap to clone.
#[derive(Clone, Debug)]
pub struct GatewayClient {
    http: reqwest::Client,
    base_url: String,
    model: String,
    key: KeySource,
    max_attempts: u32,
}

impl GatewayClient {
    /// A client for the configured gateway.
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            // The gateway is a cluster-internal service: never send it through a proxy.
            .no_proxy()
            .user_agent(concat!(
                env!("CARGO_PKG_NAME"),
                "/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()?;
        Ok(Self {
            http,
            base_url: config.gateway_url.clone(),
            model: config.model.clone(),
            key: config.key.clone(),
            max_attempts: config.max_attempts.max(1),
        })
    }

    /// The model this client asks for.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// One chat completion. `inbound` are the headers of the request being
    /// served, used to continue the caller's trace.
    pub async fn chat(
        &self,
        messages: &[ChatMessage],
        idempotency_key: &str,
        inbound: &HeaderMap,
    ) -> Result<Completion, GatewayError> {
        // Span name and attributes follow the OpenTelemetry GenAI conventions.
        let span = tracing::info_span!(
            "gen_ai.chat",
            otel.name = %format!("chat {}", self.model),
            otel.kind = "client",
            otel.status_code = Empty,
            gen_ai.operation.name = "chat",
            gen_ai.request.model = %self.model,
            gen_ai.response.model = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        let result = self
            .send(messages, idempotency_key, inbound)
            .instrument(span.clone())
            .await;
        match &result {
            Ok(completion) => {
                if let Some(model) = &completion.model {
                    span.record("gen_ai.response.model", model.as_str());
                }
                if let Some(n) = completion.input_tokens {
                    span.record("gen_ai.usage.input_tokens", n);
                }
                if let Some(n) = completion.output_tokens {
                    span.record("gen_ai.usage.output_tokens", n);
                }
            }
            Err(error) => {
                span.record("otel.status_code", "ERROR");
                span.record("error.type", error.kind().as_str());
                span.in_scope(|| tracing::warn!(%error, "LLM gateway call failed"));
            }
        }
        result
    }

    async fn send(
        &self,
        messages: &[ChatMessage],
        idempotency_key: &str,
        inbound: &HeaderMap,
    ) -> Result<Completion, GatewayError> {
        let key = self.key.load().map_err(GatewayError::NoKey)?;
        let mut headers = telemetry::outbound_headers(&tracing::Span::current(), inbound);
        headers.insert(
            IDEMPOTENCY_KEY,
            HeaderValue::from_str(idempotency_key)
                .map_err(|_| GatewayError::BadResponse("invalid Idempotency-Key".to_owned()))?,
        );
        let url = format!("{}/chat/completions", self.base_url);
        let body = serde_json::json!({
            "model": self.model,
            "messages": messages,
            "temperature": 0.2,
        });

        let mut attempt = 1;
        loop {
            let last = attempt >= self.max_attempts;
            let sent = self
                .http
                .post(&url)
                .bearer_auth(&key)
                .headers(headers.clone())
                .json(&body)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) if !last && (e.is_timeout() || e.is_connect()) => {
                    backoff(attempt).await;
                    attempt += 1;
                    continue;
                }
                Err(e) if e.is_timeout() => return Err(GatewayError::Timeout),
                Err(e) => return Err(GatewayError::Unreachable(e.without_url().to_string())),
            };
            let status = response.status();
            tracing::Span::current().record("http.response.status_code", status.as_u16());
            if status.is_success() {
                let parsed: ChatResponse = response
                    .json()
                    .await
                    .map_err(|e| GatewayError::BadResponse(e.without_url().to_string()))?;
                let content = parsed
                    .choices
                    .into_iter()
                    .next()
                    .and_then(|c| c.message.content)
                    .ok_or_else(|| GatewayError::BadResponse("no choices".to_owned()))?;
                return Ok(Completion {
                    content,
                    model: parsed.model,
                    input_tokens: parsed.usage.as_ref().and_then(|u| u.prompt_tokens),
                    output_tokens: parsed.usage.as_ref().and_then(|u| u.completion_tokens),
                });
            }
            let retryable = matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504);
            if retryable && !last {
                backoff(attempt).await;
                attempt += 1;
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            return Err(GatewayError::Status {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
    }
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
}

/// The gateway's `{"error": {"message": ...}}`, or the start of its body.
fn error_message(body: &str) -> String {
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned());
    message.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_idempotency_keys_are_kept_and_missing_ones_generated() {
        let mut headers = HeaderMap::new();
        let generated = idempotency_key(&headers).unwrap();
        assert_eq!(
            uuid::Uuid::parse_str(&generated).unwrap().get_version_num(),
            4
        );
        assert_ne!(generated, idempotency_key(&headers).unwrap());

        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("order-42"));
        assert_eq!(idempotency_key(&headers).unwrap(), "order-42");

        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("has space"));
        assert!(idempotency_key(&headers).is_err());
        let long = "k".repeat(256);
        headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_str(&long).unwrap());
        assert!(idempotency_key(&headers).is_err());
    }

    #[test]
    fn error_messages_come_from_the_openai_error_shape() {
        assert_eq!(
            error_message(r#"{"error":{"message":"quota exceeded","type":"x"}}"#),
            "quota exceeded"
        );
        assert_eq!(error_message(" plain text "), "plain text");
        assert_eq!(error_message(&"x".repeat(500)).len(), 200);
    }
}
