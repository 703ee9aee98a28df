//! Policy as code over HTTP: the Kubernetes validating admission webhook
//! (`POST /api/admission/v1/validate`, outside the session layer: the API
//! server authenticates with TLS and, when `PAVED_ADMISSION_TOKEN` is set, a
//! bearer token) and `/api/policy/v1` for people and CI.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use paved_core::policy::{self, ViolationFilter, MAX_ADMISSION_BYTES};
use paved_shared::auth::Principal;
use paved_shared::policy::{CheckReport, ExceptionView, NewException, PolicyView, ViolationPage};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::AppState;

/// The admission webhook's route, with its own body limit.
pub fn admission_routes() -> Router<AppState> {
    Router::new().route("/api/admission/v1/validate", post(validate))
}

/// `/api/policy/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/bundle", get(bundle))
        .route("/policies", get(policies))
        .route("/violations", get(violations))
        .route("/exceptions", get(exceptions).post(create_exception))
        .route("/exceptions/{id}/revoke", post(revoke_exception))
        .route("/check", post(check))
        .route("/reload", post(reload))
        .route("/cli/{platform}", get(cli))
}

/// The platform this binary was built for, as `/cli/{platform}` names it.
pub const CLI_PLATFORM: &str = if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
    "linux-x86_64"
} else if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
    "linux-aarch64"
} else if cfg!(all(target_os = "macos", target_arch = "aarch64")) {
    "darwin-aarch64"
} else {
    "other"
};

/// `GET /api/policy/v1/cli/{platform}`: this `paved` binary, so CI runs
/// `paved policy test` with exactly the engine the portal enforces with.
async fn cli(
    Extension(p): Extension<Principal>,
    ApiPath(platform): ApiPath<String>,
) -> ApiResult<Response> {
    policy::authorize_view(&p)?;
    if platform != CLI_PLATFORM {
        return Err(paved_core::CoreError::NotFound(format!(
            "a paved CLI for {platform} (this portal serves {CLI_PLATFORM})"
        ))
        .into());
    }
    let path = std::env::current_exe().map_err(|e| {
        tracing::error!(error = %e, "cannot locate the running binary");
        paved_core::CoreError::Unavailable("the CLI cannot be served right now".into())
    })?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| {
        tracing::error!(error = %e, "cannot open the running binary");
        paved_core::CoreError::Unavailable("the CLI cannot be served right now".into())
    })?;
    let length = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_string(),
            ),
            (axum::http::header::CONTENT_LENGTH, length.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"paved\"".to_string(),
            ),
        ],
        body,
    )
        .into_response())
}

fn review(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn same_secret(given: &str, expected: &str) -> bool {
    // Compare digests so the time taken does not depend on where they differ.
    Sha256::digest(given.as_bytes()) == Sha256::digest(expected.as_bytes())
}

/// `POST /api/admission/v1/validate`: AdmissionReview in, AdmissionReview out.
/// Always HTTP 200 with a review, as the API server expects; a malformed
/// request is `allowed: false` with code 400 (413 when too large).
async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let core = &state.core;
    if let Some(token) = &core.config.policy.admission_token {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given, token.expose_secret()) {
            return review(
                StatusCode::UNAUTHORIZED,
                policy::admission_error("a valid bearer token is required"),
            );
        }
    }
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
    if !json {
        return review(
            StatusCode::OK,
            policy::admission_error("expected Content-Type application/json"),
        );
    }
    // Read at most the limit: a larger body is answered, never buffered whole.
    let body: Bytes = match axum::body::to_bytes(body, MAX_ADMISSION_BYTES).await {
        Ok(body) => body,
        Err(_) => return too_large(),
    };
    if body.is_empty() {
        return review(
            StatusCode::OK,
            policy::admission_error("request body is empty"),
        );
    }
    match policy::admission_review(core, &body) {
        Ok(answer) => review(StatusCode::OK, answer),
        Err(e) => review(StatusCode::OK, policy::admission_error(&e.0)),
    }
}

fn too_large() -> Response {
    {
        let mut answer = policy::admission_error(&format!(
            "the AdmissionReview is larger than {} MiB",
            MAX_ADMISSION_BYTES / 1024 / 1024
        ));
        answer["response"]["status"]["code"] = 413.into();
        review(StatusCode::OK, answer)
    }
}

/// `GET /api/policy/v1/bundle`: every template, constraint and Rego file in
/// force, for `paved policy test -p <this URL>`.
async fn bundle(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Value>> {
    policy::authorize_view(&p)?;
    Ok(Json(policy::bundle(&state.core)))
}

async fn policies(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<PolicyView>>> {
    Ok(Json(policy::list_policies(&state.core, &p).await?))
}

#[derive(Debug, Deserialize)]
struct ViolationQuery {
    point: Option<String>,
    policy: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

async fn violations(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<ViolationQuery>,
) -> ApiResult<Json<ViolationPage>> {
    let filter = ViolationFilter {
        point: q.point,
        policy: q.policy,
        before: q.before,
        limit: q.limit.unwrap_or(50),
    };
    Ok(Json(policy::violations(&state.core, &p, filter).await?))
}

async fn exceptions(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<ExceptionView>>> {
    Ok(Json(policy::exceptions(&state.core, &p).await?))
}

async fn create_exception(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(input): ApiJson<NewException>,
) -> ApiResult<Response> {
    let created = policy::create_exception(&state.core, &p, input).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn revoke_exception(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    policy::revoke_exception(&state.core, &p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/policy/v1/reload`: read `PAVED_POLICY_DIRS` again (platform admins).
async fn reload(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Value>> {
    let count = state.core.policies.reload(&state.core.db, &p).await?;
    Ok(Json(serde_json::json!({"policies": count})))
}

#[derive(Debug, Deserialize)]
struct CheckInput {
    /// Manifests: multi-document YAML or JSON.
    manifests: String,
}

/// `POST /api/policy/v1/check`: check manifests as the playground does
/// (`{"manifests": "<yaml>"}`); nothing is recorded.
async fn check(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(input): ApiJson<CheckInput>,
) -> ApiResult<Json<CheckReport>> {
    Ok(Json(policy::playground(&state.core, &p, &input.manifests)?))
}
