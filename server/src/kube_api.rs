//! Kubernetes over HTTP, `/api/kube/v1`: the clusters with their health
//! (admins), and what runs for a catalog entity or a team, with logs for
//! the owning team.

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use paved_shared::auth::Principal;
use paved_shared::kube::{ClusterView, PodLogs, RuntimeView};
use serde::Deserialize;

use crate::error::ApiResult;
use crate::extract::{ApiPath, ApiQuery};
use crate::AppState;

/// `/api/kube/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/clusters", get(clusters))
        .route("/entities/{kind}/{namespace}/{name}/runtime", get(runtime))
        .route("/entities/{kind}/{namespace}/{name}/logs", get(logs))
        .route("/teams/{team}/runtime", get(team_runtime))
}

/// `GET /clusters`: every configured cluster and whether it answers (admins).
async fn clusters(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<ClusterView>>> {
    Ok(Json(paved_core::kube::clusters(&state.core, &p).await?))
}

fn entity_ref(kind: &str, namespace: &str, name: &str) -> String {
    format!("{kind}:{namespace}/{name}").to_ascii_lowercase()
}

/// `GET /entities/{kind}/{namespace}/{name}/runtime`.
async fn runtime(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((kind, namespace, name)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<RuntimeView>> {
    let r = entity_ref(&kind, &namespace, &name);
    Ok(Json(paved_core::kube::runtime(&state.core, &p, &r).await?))
}

#[derive(Deserialize)]
struct LogQuery {
    cluster: String,
    pod: String,
    container: Option<String>,
    #[serde(default)]
    previous: bool,
}

/// `GET /entities/{kind}/{namespace}/{name}/logs?cluster=&pod=[&container=][&previous=true]`.
async fn logs(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((kind, namespace, name)): ApiPath<(String, String, String)>,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<PodLogs>> {
    let r = entity_ref(&kind, &namespace, &name);
    Ok(Json(
        paved_core::kube::logs(
            &state.core,
            &p,
            &r,
            &q.cluster,
            &q.pod,
            q.container.as_deref(),
            q.previous,
        )
        .await?,
    ))
}

/// `GET /teams/{team}/runtime`: every Component of the team that runs somewhere.
async fn team_runtime(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<Vec<RuntimeView>>> {
    Ok(Json(
        paved_core::kube::team_runtime(&state.core, &p, &team).await?,
    ))
}
