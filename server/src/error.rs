//! The one error envelope of Paved's HTTP APIs, Backstage's:
//! `{"error": {"name", "message"}, "response": {"statusCode"}}`. Every JSON
//! API answers its errors in it (the catalog and scaffolder APIs because
//! Backstage clients expect it, the others so a client needs one parser);
//! only the LLM gateway under `/llm` answers in OpenAI's format. Messages are
//! safe to show: database errors are logged and never sent, and request
//! bodies are never quoted (they may hold secrets).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use paved_core::CoreError;

/// An API error: a domain error, or a request the API could not read.
#[derive(Debug)]
pub enum ApiError {
    /// What the domain refused.
    Core(CoreError),
    /// A request refused before it reached the domain (authentication, a
    /// malformed path, an unreadable body).
    Request {
        /// The status to answer.
        status: StatusCode,
        /// What is wrong, for the caller.
        message: String,
    },
}

/// The result of an API handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// A refusal with `status` and a message for the caller.
    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError::Request {
            status,
            message: message.into(),
        }
    }
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status_code(&self) -> u16 {
        match self {
            ApiError::Core(e) => e.status_code(),
            ApiError::Request { status, .. } => status.as_u16(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Core(e) => e.fmt(f),
            ApiError::Request { message, .. } => f.write_str(message),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        ApiError::Core(e)
    }
}

impl From<paved_core::auth::Forbidden> for ApiError {
    fn from(refusal: paved_core::auth::Forbidden) -> Self {
        ApiError::Core(refusal.into())
    }
}

/// Backstage's error name for a status.
fn name_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 415 | 422 => "InputError",
        401 => "AuthenticationError",
        403 => "NotAllowedError",
        404 => "NotFoundError",
        409 => "ConflictError",
        429 => "TooManyRequestsError",
        502 => "UpstreamError",
        503 => "ServiceUnavailableError",
        _ => "Error",
    }
}

/// The error envelope every JSON API answers with (Backstage's format).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
    /// The HTTP answer it came with.
    pub response: ErrorStatus,
}

/// The error's kind and message (never SQL text or a secret value).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// e.g. `NotFoundError`, `InputError`, `ConflictError`.
    pub name: &'static str,
    /// For people; names the field at fault.
    pub message: String,
}

/// The HTTP status of an error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorStatus {
    /// The HTTP status code.
    #[serde(rename = "statusCode")]
    pub status_code: u16,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::Request { status, message } => (status, message),
            ApiError::Core(e) => {
                let status = StatusCode::from_u16(e.status_code())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let message = match e {
                    CoreError::Database(e) => {
                        tracing::error!(error = %e, "API database error");
                        "Something went wrong on our side; it has been logged.".to_owned()
                    }
                    CoreError::Forbidden(m)
                    | CoreError::Conflict(m)
                    | CoreError::Unavailable(m)
                    | CoreError::Upstream(m)
                    | CoreError::TooManyRequests(m) => m,
                    other => other.to_string(),
                };
                (status, message)
            }
        };
        let body = ErrorBody {
            error: ErrorDetail {
                name: name_for(status),
                message,
            },
            response: ErrorStatus {
                status_code: status.as_u16(),
            },
        };
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn body(e: ApiError) -> (StatusCode, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_error_has_one_envelope() {
        let (status, v) = body(CoreError::NotFound("team x".into()).into()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            v,
            json!({"error": {"name": "NotFoundError", "message": "team x not found"},
                   "response": {"statusCode": 404}})
        );
        let (status, v) = body(ApiError::status(
            StatusCode::UNAUTHORIZED,
            "Sign in or send a bearer token.",
        ))
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(v["error"]["name"], "AuthenticationError");
        assert_eq!(v["response"]["statusCode"], 401);
        let (status, v) = body(
            CoreError::Invalid {
                field: "limit_cents",
                message: "is required".into(),
            }
            .into(),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(v["error"]["name"], "InputError");
        assert_eq!(v["error"]["message"], "limit_cents: is required");
    }
}
