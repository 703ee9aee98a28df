//! HTTP-only endpoints: health, readiness and the caller's identity.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use paved_core::auth::Principal;

use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::AppState;

/// `GET /healthz`: the process is alive.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: the database answers and the configured catalog locations
/// have been read once. 503 otherwise. Vault is reported separately and does
/// not make the portal unready: the catalog and everything else still work
/// while Vault is sealed.
pub async fn readyz(
    State(state): State<AppState>,
    caller: Option<Extension<Principal>>,
) -> Response {
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
            // Vault's address and error text are for signed-in callers only.
            "vault": match (&state.core.vault, caller.is_some()) {
                (Some(vault), true) => serde_json::to_value(vault.status()).unwrap_or_default(),
                (Some(vault), false) => serde_json::json!({"state": vault.status().state}),
                (None, _) => serde_json::json!({"state": "not_configured"}),
            },
        })),
    )
        .into_response()
}

/// `GET /api/v1/me`: the caller's identity, teams and roles (the gate answers 401 when anonymous).
pub async fn me(Extension(principal): Extension<Principal>) -> Json<paved_shared::identity::Me> {
    Json(paved_shared::identity::Me::from(&principal))
}

/// `GET /api/v1/admin/users`: every person with their access (platform admins).
pub async fn admin_users(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
) -> Result<Json<Vec<paved_core::tokens::UserAccess>>, ApiError> {
    Ok(Json(
        paved_core::tokens::list_users(&state.core.db, &caller).await?,
    ))
}

/// `GET /api/v1/admin/users/{id}/tokens`: a person's tokens (platform admins).
pub async fn admin_user_tokens(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Vec<paved_core::tokens::TokenInfo>>, ApiError> {
    Ok(Json(
        paved_core::tokens::list_for_user(&state.core.db, &caller, id).await?,
    ))
}

/// `POST /api/v1/admin/tokens/{id}/revoke`: revokes anyone's token (platform admins).
pub async fn admin_revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, ApiError> {
    paved_core::tokens::revoke_any(&state.core.db, &caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/admin/users/{id}/disable` and `/enable` (platform admins):
/// a disabled person's sessions and tokens stop at once.
pub async fn admin_set_disabled(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath((id, action)): ApiPath<(i64, String)>,
) -> Result<StatusCode, ApiError> {
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => {
            return Err(paved_core::CoreError::NotFound(format!("action {action}")).into());
        }
    };
    paved_core::tokens::change_access(&state.core, &caller, id, disabled).await?;
    Ok(StatusCode::NO_CONTENT)
}
