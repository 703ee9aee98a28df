//! Delivery outcomes over HTTP: the event endpoints (`/api/events/v1/…`,
//! authenticated by each source's signature or token, outside the session
//! layer) and the DORA API (`/api/outcomes/v1/…`, for signed-in people and
//! bearer tokens, authorized by the domain).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use paved_core::auth::Principal;
use paved_core::outcomes::sources::{self, SourceKind};
use paved_core::outcomes::{self, surveys, Delivery, QueryInput, ReceiveError, Target};
use paved_core::CoreError;
use paved_shared::surveys::{AnswerInput, SurveyInput};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, JsonObject, QueryPairs};
use crate::AppState;

/// The event endpoints (mounted at `/api/events/v1`, no session).
pub fn event_routes() -> Router<AppState> {
    Router::new()
        .route("/github", post(github))
        .route("/gitlab", post(gitlab))
        .route("/generic", post(generic))
        .route("/devlake/connections/{connection}/{what}", post(devlake))
        .route(
            "/devlake/connections/{connection}/issue/{key}/close",
            post(devlake_close),
        )
}

/// The DORA API (mounted at `/api/outcomes/v1`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/teams/{team}/dora", get(team_dora))
        .route("/teams/{team}/{list}", get(team_list))
        .route("/components/{namespace}/{name}/dora", get(component_dora))
        .route("/components/{namespace}/{name}/{list}", get(component_list))
        .route("/sources", get(list_sources).post(create_source))
        .route("/sources/{id}", axum::routing::delete(delete_source))
        .route("/sources/{id}/rotate", post(rotate_source))
        .route("/unmapped", get(unmapped))
        .route("/surveys", get(survey_rounds).post(create_survey))
        .route("/surveys/open", get(open_surveys))
        .route("/surveys/{id}/answer", axum::routing::put(answer_survey))
        .route("/surveys/{id}/results", get(survey_results))
        .route("/surveys/{id}/results.csv", get(survey_csv))
        .route("/surveys/{id}/themes", axum::routing::put(survey_themes))
        .route("/surveys/{id}/prompt", post(survey_prompt))
        .route("/adoption", get(adoption))
        .route("/capabilities", get(capabilities))
        .route("/capabilities/{*id}", get(capability))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn bearer(headers: &HeaderMap) -> &str {
    header(headers, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default()
}

fn now(state: &AppState) -> i64 {
    state.core.budgets.ledger.now_ms() / 1000
}

async fn receive(
    state: &AppState,
    delivery: Delivery<'_>,
) -> Result<outcomes::Receipt, ReceiveError> {
    let core = &state.core;
    outcomes::receive(core, delivery, now(state)).await
}

fn refused(e: ReceiveError) -> ApiError {
    match e {
        ReceiveError::Unauthenticated(message) => {
            ApiError::status(StatusCode::UNAUTHORIZED, message)
        }
        ReceiveError::Invalid(r) => ApiError::status(
            StatusCode::BAD_REQUEST,
            format!("{} {}", r.field, r.message),
        ),
        ReceiveError::Core(e) => ApiError::Core(e),
    }
}

fn accepted(receipt: outcomes::Receipt) -> Response {
    (StatusCode::ACCEPTED, Json(receipt)).into_response()
}

async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let event = header(&headers, "x-github-event").ok_or_else(|| {
        ApiError::status(
            StatusCode::BAD_REQUEST,
            "X-GitHub-Event is required (this endpoint takes GitHub webhook deliveries)",
        )
    })?;
    let signature = header(&headers, "x-hub-signature-256").ok_or_else(|| {
        ApiError::status(
            StatusCode::UNAUTHORIZED,
            "X-Hub-Signature-256 is required: set the source's secret on the webhook",
        )
    })?;
    let receipt = receive(
        &state,
        Delivery {
            kind: SourceKind::Github,
            event,
            delivery_id: header(&headers, "x-github-delivery"),
            credential: signature,
            body: &body,
        },
    )
    .await
    .map_err(refused)?;
    Ok(accepted(receipt))
}

async fn gitlab(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let token = header(&headers, "x-gitlab-token").ok_or_else(|| {
        ApiError::status(
            StatusCode::UNAUTHORIZED,
            "X-Gitlab-Token is required: set the source's token as the webhook's secret token",
        )
    })?;
    let event = header(&headers, "x-gitlab-event").ok_or_else(|| {
        ApiError::status(
            StatusCode::BAD_REQUEST,
            "X-Gitlab-Event is required (this endpoint takes GitLab webhooks)",
        )
    })?;
    // GitLab's `Idempotency-Key` is the same on a retry and different for
    // every other delivery; `X-Gitlab-Event-UUID` is shared by the hooks one
    // action triggers, so it counts only with the event's name. (Never
    // `X-Gitlab-Webhook-UUID`: that names the webhook, not the delivery.)
    let delivery = header(&headers, "idempotency-key")
        .map(|k| format!("idempotency:{k}"))
        .or_else(|| header(&headers, "x-gitlab-event-uuid").map(|u| format!("{event}:{u}")));
    let delivery_id = delivery.as_deref();
    let receipt = receive(
        &state,
        Delivery {
            kind: SourceKind::Gitlab,
            event,
            delivery_id,
            credential: token,
            body: &body,
        },
    )
    .await
    .map_err(refused)?;
    Ok(accepted(receipt))
}

async fn generic(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let receipt = receive(
        &state,
        Delivery {
            kind: SourceKind::Generic,
            event: "generic",
            delivery_id: header(&headers, "idempotency-key"),
            credential: bearer(&headers),
            body: &body,
        },
    )
    .await
    .map_err(refused)?;
    Ok(accepted(receipt))
}

/// DevLake's own answers, so its clients see what they expect.
fn devlake_answer(result: Result<outcomes::Receipt, ReceiveError>) -> Response {
    match result {
        Ok(_) => (
            StatusCode::OK,
            Json(json!({"code": 0, "success": true, "message": "success", "causes": null, "data": null})),
        )
            .into_response(),
        Err(ReceiveError::Unauthenticated(message)) => {
            (StatusCode::UNAUTHORIZED, Json(json!({"success": false, "message": message, "causes": null}))).into_response()
        }
        Err(ReceiveError::Invalid(r)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"success": false, "message": format!("input json error: {} {}", r.field, r.message), "causes": [r.message]})),
        )
            .into_response(),
        Err(ReceiveError::Core(e)) => ApiError::Core(e).into_response(),
    }
}

async fn devlake(
    State(state): State<AppState>,
    ApiPath((_connection, what)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let event = match what.as_str() {
        "deployments" => "deployments",
        "issues" => "issues",
        "pull_requests" => "pull_requests",
        _ => {
            return ApiError::status(
                StatusCode::NOT_FOUND,
                "use …/deployments, …/issues, …/pull_requests or …/issue/{key}/close",
            )
            .into_response()
        }
    };
    devlake_answer(
        receive(
            &state,
            Delivery {
                kind: SourceKind::Devlake,
                event,
                delivery_id: None,
                credential: bearer(&headers),
                body: &body,
            },
        )
        .await,
    )
}

async fn devlake_close(
    State(state): State<AppState>,
    ApiPath((_connection, key)): ApiPath<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if key.is_empty() || key.len() > 255 {
        return ApiError::status(
            StatusCode::BAD_REQUEST,
            "the issue key must be 1 to 255 characters",
        )
        .into_response();
    }
    let event = format!("issue-close:{key}");
    devlake_answer(
        receive(
            &state,
            Delivery {
                kind: SourceKind::Devlake,
                event: &event,
                delivery_id: None,
                credential: bearer(&headers),
                body: &body,
            },
        )
        .await,
    )
}

fn query(state: &AppState, q: &QueryPairs) -> Result<outcomes::Query, CoreError> {
    let input = QueryInput {
        from: q.first("from"),
        to: q.first("to"),
        env: q.first("env"),
        tz: q.first("tz"),
        bands: q.first("bands"),
    };
    outcomes::Query::parse(&input, now(state))
}

async fn dora_of(
    state: &AppState,
    p: &Principal,
    target: Target,
    q: &QueryPairs,
) -> ApiResult<Json<paved_core::outcomes::DoraView>> {
    let core = &state.core;
    let query = query(state, q)?;
    Ok(Json(outcomes::dora(core, p, &target, &query).await?))
}

async fn list_of(
    state: &AppState,
    p: &Principal,
    target: Target,
    list: &str,
    q: &QueryPairs,
) -> ApiResult<Json<Value>> {
    let core = &state.core;
    let query = query(state, q)?;
    let behind = outcomes::behind(core, p, &target, &query).await?;
    let value = match list {
        "deployments" => serde_json::to_value(behind.deployments),
        "changes" => serde_json::to_value(behind.changes),
        "incidents" => serde_json::to_value(behind.incidents),
        _ => {
            return Err(ApiError::status(
                StatusCode::NOT_FOUND,
                "use …/dora, …/deployments, …/changes or …/incidents",
            ))
        }
    }
    .unwrap_or(Value::Null);
    Ok(Json(json!({ list: value })))
}

fn component_target(namespace: &str, name: &str) -> Target {
    Target::Component(format!(
        "component:{}/{}",
        namespace.to_ascii_lowercase(),
        name.to_ascii_lowercase()
    ))
}

async fn team_dora(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
    q: QueryPairs,
) -> ApiResult<Json<paved_core::outcomes::DoraView>> {
    dora_of(&state, &p, Target::Team(team), &q).await
}

async fn team_list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((team, list)): ApiPath<(String, String)>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    list_of(&state, &p, Target::Team(team), &list, &q).await
}

async fn component_dora(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((namespace, name)): ApiPath<(String, String)>,
    q: QueryPairs,
) -> ApiResult<Json<paved_core::outcomes::DoraView>> {
    dora_of(&state, &p, component_target(&namespace, &name), &q).await
}

async fn component_list(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((namespace, name, list)): ApiPath<(String, String, String)>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    list_of(&state, &p, component_target(&namespace, &name), &list, &q).await
}

async fn list_sources(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<sources::SourceView>>> {
    Ok(Json(sources::list(&state.core.db, &p).await?))
}

async fn create_source(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    JsonObject(body): JsonObject,
) -> ApiResult<Response> {
    let kind = body
        .get("kind")
        .and_then(Value::as_str)
        .and_then(SourceKind::parse)
        .ok_or(CoreError::Invalid {
            field: "kind",
            message: "must be github, gitlab, devlake or generic".into(),
        })?;
    let name = body.get("name").and_then(Value::as_str).unwrap_or_default();
    let created = sources::create(&state.core.db, &p, kind, name).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn rotate_source(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<sources::Created>> {
    Ok(Json(sources::rotate(&state.core.db, &p, &id).await?))
}

async fn delete_source(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    sources::delete(&state.core.db, &p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unmapped(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<paved_core::outcomes::read::Unmapped>>> {
    Ok(Json(outcomes::unmapped(&state.core.db, &p).await?))
}

async fn create_survey(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(input): ApiJson<SurveyInput>,
) -> ApiResult<Response> {
    let survey = surveys::create(&state.core, &p, &input, now(&state)).await?;
    Ok((StatusCode::CREATED, Json(survey)).into_response())
}

async fn survey_rounds(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<paved_shared::surveys::Round>>> {
    Ok(Json(surveys::rounds(&state.core, &p, now(&state)).await?))
}

async fn open_surveys(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<Vec<paved_shared::surveys::OpenSurvey>>> {
    Ok(Json(
        surveys::open_for(&state.core, &p, now(&state), false).await?,
    ))
}

async fn answer_survey(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiJson(input): ApiJson<AnswerInput>,
) -> ApiResult<Json<AnswerInput>> {
    Ok(Json(
        surveys::answer(&state.core, &p, &id, &input, now(&state)).await?,
    ))
}

async fn survey_results(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    q: QueryPairs,
) -> ApiResult<Json<paved_shared::surveys::Results>> {
    let team = q.first("team");
    Ok(Json(
        surveys::results(&state.core, &p, &id, team.as_deref(), now(&state)).await?,
    ))
}

async fn survey_csv(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Response> {
    let csv = surveys::csv(&state.core, &p, &id, now(&state)).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"survey-results.csv\"",
            ),
        ],
        csv,
    )
        .into_response())
}

async fn survey_themes(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<paved_shared::surveys::Survey>> {
    let themes: Vec<paved_shared::surveys::Theme> = serde_json::from_value(
        body.get("themes")
            .cloned()
            .unwrap_or(Value::Array(Vec::new())),
    )
    .map_err(|_| CoreError::Invalid {
        field: "themes",
        message: "must be a list of {name, keywords: [..]}".into(),
    })?;
    Ok(Json(
        surveys::set_themes(&state.core, &p, &id, &themes, now(&state)).await?,
    ))
}

async fn survey_prompt(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<StatusCode> {
    let dismiss = match body.get("action").and_then(Value::as_str) {
        Some("snooze") => false,
        Some("dismiss") => true,
        _ => {
            return Err(CoreError::Invalid {
                field: "action",
                message: "must be snooze or dismiss".into(),
            }
            .into())
        }
    };
    surveys::hold_prompt(&state.core, &p, &id, dismiss, now(&state)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn capabilities(
    State(state): State<AppState>,
    // Anyone signed in reads the registry: it is about the platform, not a team.
    Extension(_): Extension<Principal>,
) -> ApiResult<Json<Vec<paved_shared::capabilities::CapabilityView>>> {
    Ok(Json(
        outcomes::capabilities::list(&state.core, now(&state)).await?,
    ))
}

async fn capability(
    State(state): State<AppState>,
    Extension(_): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<paved_shared::capabilities::CapabilityView>> {
    Ok(Json(
        outcomes::capabilities::get(&state.core, id.trim_start_matches('/'), now(&state)).await?,
    ))
}

async fn adoption(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> ApiResult<Json<paved_shared::adoption::Adoption>> {
    Ok(Json(
        outcomes::adoption::adoption(&state.core, &p, now(&state)).await?,
    ))
}
