//! HTTP-only endpoints: health, readiness and the caller's identity.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use paved_core::auth::Principal;

use crate::AppState;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers. 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = paved_core::db::is_ready(&state.core.db).await;
    let status = if database {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "status": if database { "ready" } else { "not ready" },
            "checks": { "database": if database { "ok" } else { "unreachable" } },
        })),
    )
        .into_response()
}

/// `GET /api/v1/me`: the caller's identity, teams and roles (the gate answers 401 when anonymous).
pub async fn me(Extension(principal): Extension<Principal>) -> Json<app::api::Me> {
    Json(app::api::Me::from(&principal))
}
