//! `/api/scaffolder/v2`: Backstage's scaffolder API over Paved's durable
//! scaffolder. Tasks, their events (JSON and a live SSE stream), cancel,
//! retry, dry-run, a template's parameter schema and the list of actions.
//! Secret answers arrive in `secrets` and never come back.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::stream::{self, StreamExt};
use paved_core::auth::Principal;
use paved_core::scaffold::{self, tasks::EventRow, RunRequest};
use paved_core::CoreError;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery, JsonObject};
use crate::AppState;

/// The scaffolder API routes (mounted at `/api/scaffolder/v2`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tasks", get(list_tasks).post(create_task))
        .route("/tasks/{id}", get(get_task))
        .route("/tasks/{id}/events", get(task_events))
        .route("/tasks/{id}/eventstream", get(task_eventstream))
        .route("/tasks/{id}/cancel", post(cancel_task))
        .route("/tasks/{id}/retry", post(retry_task))
        .route("/dry-run", post(dry_run))
        .route(
            "/templates/{namespace}/{kind}/{name}/parameter-schema",
            get(parameter_schema),
        )
        .route("/actions", get(actions))
}

/// `secrets` as a map of strings, held as secrets from here on.
fn take_secrets(
    body: &mut serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, SecretString>, CoreError> {
    match body.remove("secrets") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => Ok(crate::secrets_api::secret_strings("secrets", map)?
            .into_iter()
            .collect()),
        Some(_) => Err(CoreError::Invalid {
            field: "secrets",
            message: "must be an object of names to strings".into(),
        }),
    }
}

fn run_request(mut body: serde_json::Map<String, Value>) -> Result<RunRequest, CoreError> {
    let secrets = take_secrets(&mut body)?;
    let template_ref = match body.get("templateRef").and_then(Value::as_str) {
        Some(r) => r.to_owned(),
        None if body.contains_key("template") => {
            return Err(CoreError::Invalid {
                field: "templateRef",
                message: "Paved runs templates registered in the catalog; pass their templateRef (template:default/name)".into(),
            })
        }
        None => {
            return Err(CoreError::Invalid {
                field: "templateRef",
                message: "is required (template:default/name)".into(),
            })
        }
    };
    Ok(RunRequest {
        template_ref,
        values: body.remove("values").unwrap_or(json!({})),
        secrets,
        wizard_session: body
            .get("wizardSession")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Backstage's task shape plus Paved's step states.
fn task_json(task: &scaffold::TaskView) -> Value {
    json!({
        "id": task.id,
        "spec": {
            "templateInfo": {"entityRef": task.template_ref, "title": task.template_title},
            "parameters": task.values,
            "steps": task.steps.iter().map(|s| json!({"id": s.id, "name": s.name, "action": s.action})).collect::<Vec<_>>(),
        },
        "status": task.status,
        "createdBy": task.created_by,
        "ownerTeam": task.owner_team,
        "createdAt": rfc3339(task.created_at),
        "startedAt": task.started_at.map(rfc3339),
        "finishedAt": task.finished_at.map(rfc3339),
        "error": task.error,
        "output": task.output,
        "secretNames": task.secret_names,
        "steps": task.steps,
    })
}

fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Backstage's event shape.
fn event_json(e: &EventRow) -> Value {
    let kind = if e.kind == "completion" || e.kind == "cancelled" {
        e.kind.as_str()
    } else {
        "log"
    };
    json!({
        "id": e.id,
        "taskId": e.task_id,
        "type": kind,
        "createdAt": rfc3339(e.at),
        "body": {"message": e.message, "stepId": e.step_id, "status": e.status},
    })
}

async fn create_task(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    let request = run_request(body)?;
    let id = scaffold::create_task(&state.core, &principal, request).await?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "createdBy")]
    created_by: Option<String>,
}

async fn list_tasks(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    let all = query.created_by.is_none() && principal.is_admin();
    let list = scaffold::list_tasks(&state.core, &principal, all).await?;
    Ok(Json(
        json!({"tasks": list.iter().map(task_json).collect::<Vec<_>>(), "totalTasks": list.len()}),
    )
    .into_response())
}

async fn get_task(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let task = scaffold::task(&state.core, &principal, &id).await?;
    Ok(Json(task_json(&task)).into_response())
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<i64>,
}

async fn task_events(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let events = scaffold::events(&state.core, &principal, &id, query.after.unwrap_or(0)).await?;
    Ok(Json(events.iter().map(event_json).collect::<Vec<_>>()).into_response())
}

/// Live events: everything after `after` (or `Last-Event-ID`), then new ones as
/// they happen, ending after the completion event.
async fn task_eventstream(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let last_seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or(query.after)
        .unwrap_or(0);
    // Authorizes (and 404s) before the stream starts; one of a few per person.
    // The status is read before the events: a task that finishes between the
    // two reads must not look finished with nothing to send.
    let task = scaffold::task(&state.core, &principal, &id).await?;
    let pending = scaffold::events(&state.core, &principal, &id, last_seen).await?;
    if pending.is_empty() && matches!(task.status.as_str(), "completed" | "failed" | "cancelled") {
        // A finished task with nothing left to send: 204 tells EventSource
        // not to reconnect.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let slot = state.core.scaffolder.open_stream(&principal.actor())?;
    let rx = state.core.scaffolder.subscribe(&id);
    let start = (state, principal, id, last_seen, rx, false, slot);
    let stream = stream::unfold(
        start,
        |(state, principal, id, after, mut rx, done, slot)| async move {
            if done {
                return None;
            }
            let mut task_finished = false;
            loop {
                // Every read re-checks that the person may still see the task:
                // a refusal (or any error) ends the stream.
                let batch = scaffold::events(&state.core, &principal, &id, after)
                    .await
                    .ok()?;
                if !batch.is_empty() {
                    let last = batch.last().map(|e| e.id).unwrap_or(after);
                    let finished = task_finished
                        || batch
                            .iter()
                            .any(|e| e.kind == "completion" || e.kind == "cancelled");
                    let events: Vec<Result<Event, Infallible>> = batch
                        .iter()
                        .map(|e| {
                            let body = event_json(e);
                            Ok(Event::default()
                                .id(e.id.to_string())
                                .event(body["type"].as_str().unwrap_or("log"))
                                .data(body.to_string()))
                        })
                        .collect();
                    return Some((
                        stream::iter(events),
                        (state, principal, id, last, rx, finished, slot),
                    ));
                }
                if task_finished {
                    return None;
                }
                // Nothing new: if the task has finished, read once more (its
                // last events may have been committed with its status) and end.
                let task = scaffold::task(&state.core, &principal, &id).await.ok()?;
                if matches!(task.status.as_str(), "completed" | "failed" | "cancelled") {
                    task_finished = true;
                    continue;
                }
                // Wait for this task's next event (or re-check every 15 s).
                let _ = tokio::time::timeout(Duration::from_secs(15), rx.changed()).await;
            }
        },
    )
    .flatten();
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn cancel_task(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let status = scaffold::cancel(&state.core, &principal, &id).await?;
    Ok(Json(json!({"status": status})).into_response())
}

async fn retry_task(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let secrets = if body.is_empty() {
        BTreeMap::new()
    } else {
        take_secrets(&mut JsonObject::parse(&body)?.0)?
    };
    let from = scaffold::retry(&state.core, &principal, &id, secrets).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "fromStep": from})),
    )
        .into_response())
}

async fn dry_run(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    JsonObject(body): JsonObject,
) -> Result<Response, ApiError> {
    use base64::Engine as _;
    let request = run_request(body)?;
    let result = scaffold::dry_run(&state.core, &principal, request).await?;
    Ok(Json(json!({
        "log": result.log.iter().map(|(step, message)| json!({"body": {"message": message, "stepId": step}})).collect::<Vec<_>>(),
        "directoryContents": result.files.iter().map(|f| json!({
            "path": f.path,
            "size": f.size,
            "base64Content": f.content.as_ref().map(|c| base64::engine::general_purpose::STANDARD.encode(c)),
        })).collect::<Vec<_>>(),
        "steps": result.steps,
        "output": result.output,
        "error": result.error,
    }))
    .into_response())
}

async fn parameter_schema(
    State(state): State<AppState>,
    ApiPath((namespace, kind, name)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let reference = format!("{kind}:{namespace}/{name}");
    let schema = scaffold::parameter_schema(&state.core, &reference).await?;
    Ok(Json(schema).into_response())
}

async fn actions() -> Response {
    Json(scaffold::list_actions()).into_response()
}
