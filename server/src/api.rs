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

/// `GET /readyz`: the database answers and the configured catalog locations
/// have been read once. 503 otherwise. Vault is reported separately and does
/// not make the portal unready: the catalog and everything else still work
/// while Vault is sealed.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = paved_core::db::is_ready(&state.core.db).await;
    let catalog = state
        .catalog_ready
        .load(std::sync::atomic::Ordering::Acquire);
    let ready = database && catalog;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "status": if ready { "ready" } else { "not ready" },
            "checks": {
                "database": if database { "ok" } else { "unreachable" },
                "catalog": if catalog { "ok" } else { "initial ingestion in progress" },
            },
            "vault": match &state.core.vault {
                Some(vault) => serde_json::to_value(vault.status()).unwrap_or_default(),
                None => serde_json::json!({"state": "not_configured"}),
            },
        })),
    )
        .into_response()
}

/// `GET /api/v1/me`: the caller's identity, teams and roles (the gate answers 401 when anonymous).
pub async fn me(Extension(principal): Extension<Principal>) -> Json<app::api::Me> {
    Json(app::api::Me::from(&principal))
}
