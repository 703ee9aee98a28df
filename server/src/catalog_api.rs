//! The catalog REST API at `/api/catalog`, shaped like Backstage's catalog
//! backend so `@backstage/catalog-client` works against it unchanged.
//! Every signed-in caller (session or bearer token) reads; platform admins write.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use base64::Engine;
use paved_core::auth::{authorize, Action, Principal};
use paved_core::catalog::{model, query, store};
use paved_core::CoreError;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::AppState;

/// The routes, to nest under `/api/catalog`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/entities", get(list_entities))
        .route("/entities/by-query", get(entities_by_query))
        .route(
            "/entities/by-name/{kind}/{namespace}/{name}",
            get(entity_by_name),
        )
        .route(
            "/entities/by-uid/{uid}",
            get(entity_by_uid).delete(delete_entity),
        )
        .route("/entities/by-refs", post(entities_by_refs))
        .route("/entity-facets", get(entity_facets))
        .route("/locations", get(list_locations).post(add_location))
        .route("/locations/{id}", get(get_location).delete(delete_location))
        .route("/locations/{id}/problems", get(get_location_problems))
        .route("/validate-entity", post(validate_entity))
        .route("/refresh", post(refresh))
        .route("/openapi.json", get(openapi))
}

use crate::error::ApiResult;
use crate::extract::{ApiPath, QueryPairs};

fn fields(q: &QueryPairs) -> Vec<String> {
    q.all("fields")
        .iter()
        .flat_map(|f| f.split(',').map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .collect()
}

fn number(q: &QueryPairs, name: &'static str, default: i64) -> Result<i64, CoreError> {
    match q.first(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| CoreError::Invalid {
                field: name,
                message: format!("`{v}` is not a non-negative whole number"),
            }),
    }
}

/// Parses `metadata.name,asc` / `asc:metadata.name` order parameters.
fn orders(q: &QueryPairs) -> Result<Vec<(String, bool)>, CoreError> {
    let mut out = Vec::new();
    for raw in q.all("orderField").into_iter().chain(q.all("order")) {
        let (field, direction) = if let Some((f, d)) = raw.split_once(',') {
            (f.to_owned(), d.to_owned())
        } else if let Some((d, f)) = raw.split_once(':') {
            (f.to_owned(), d.to_owned())
        } else {
            (raw.clone(), "asc".to_owned())
        };
        let ascending = match direction.as_str() {
            "asc" => true,
            "desc" => false,
            other => {
                return Err(CoreError::Invalid {
                    field: "order",
                    message: format!("`{other}` is not asc or desc"),
                })
            }
        };
        out.push((field, ascending));
    }
    Ok(out)
}

/// Entities as raw JSON, projected to `fields` when any are asked for.
fn raw_items(json: Vec<String>, fields: &[String]) -> Result<Vec<Box<RawValue>>, CoreError> {
    let bad = |e: serde_json::Error| CoreError::Invalid {
        field: "body",
        message: e.to_string(),
    };
    json.into_iter()
        .map(|text| {
            if fields.is_empty() {
                RawValue::from_string(text).map_err(bad)
            } else {
                let value: Value = serde_json::from_str(&text).map_err(bad)?;
                serde_json::value::to_raw_value(&query::project(&value, fields)).map_err(bad)
            }
        })
        .collect()
}

/// `GET /entities`: the older list form (a JSON array).
async fn list_entities(
    State(state): State<AppState>,
    p: QueryPairs,
) -> ApiResult<Json<Vec<Box<RawValue>>>> {
    let q = query::Query {
        filter: query::Filter::parse(&p.all("filter"))?,
        full_text: None,
        order: orders(&p)?,
        offset: number(&p, "offset", 0)?,
        limit: number(&p, "limit", 1000)?.min(1000),
        only: None,
    };
    let (json, _) = query::run_json(&state.core.db, &q).await?;
    Ok(Json(raw_items(json, &fields(&p))?))
}

/// A `by-query` answer.
#[derive(serde::Serialize)]
struct QueryAnswer {
    items: Vec<Box<RawValue>>,
    #[serde(rename = "totalItems")]
    total_items: i64,
    #[serde(rename = "pageInfo")]
    page_info: serde_json::Map<String, Value>,
}

/// The state a `by-query` cursor carries, so later pages need only `cursor`.
#[derive(serde::Serialize, Deserialize)]
struct Cursor {
    filter: Vec<String>,
    order: Vec<(String, bool)>,
    text: Option<String>,
    offset: i64,
}

fn encode_cursor(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode_cursor(raw: &str) -> Result<Cursor, CoreError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| CoreError::Invalid {
            field: "cursor",
            message: "the cursor is not one this API issued".into(),
        })
}

/// `GET /entities/by-query`: filtered, searched, ordered pages with cursors.
async fn entities_by_query(
    State(state): State<AppState>,
    p: QueryPairs,
) -> ApiResult<Json<QueryAnswer>> {
    let limit = number(&p, "limit", 20)?.clamp(1, 500);
    let cursor = match p.first("cursor") {
        Some(c) => decode_cursor(&c)?,
        None => Cursor {
            filter: p.all("filter"),
            order: orders(&p)?,
            text: p
                .first("fullTextFilterTerm")
                .or_else(|| p.first("fullTextFilter"))
                .filter(|t| !t.trim().is_empty()),
            offset: number(&p, "offset", 0)?,
        },
    };
    let q = query::Query {
        filter: query::Filter::parse(&cursor.filter)?,
        full_text: cursor.text.clone(),
        order: cursor.order.clone(),
        offset: cursor.offset,
        limit,
        only: None,
    };
    let (json, total) = query::run_json(&state.core.db, &q).await?;
    let mut page_info = serde_json::Map::new();
    if cursor.offset + limit < total {
        page_info.insert(
            "nextCursor".into(),
            json!(encode_cursor(&Cursor {
                offset: cursor.offset + limit,
                ..cursor_clone(&cursor)
            })),
        );
    }
    if cursor.offset > 0 {
        page_info.insert(
            "prevCursor".into(),
            json!(encode_cursor(&Cursor {
                offset: (cursor.offset - limit).max(0),
                ..cursor_clone(&cursor)
            })),
        );
    }
    Ok(Json(QueryAnswer {
        items: raw_items(json, &fields(&p))?,
        total_items: total,
        page_info,
    }))
}

fn cursor_clone(c: &Cursor) -> Cursor {
    Cursor {
        filter: c.filter.clone(),
        order: c.order.clone(),
        text: c.text.clone(),
        offset: c.offset,
    }
}

async fn entity_by_name(
    State(state): State<AppState>,
    ApiPath((kind, namespace, name)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        store::entity_by_ref(&state.core.db, &format!("{kind}:{namespace}/{name}")).await?,
    ))
}

async fn entity_by_uid(
    State(state): State<AppState>,
    ApiPath(uid): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(store::entity_by_uid(&state.core.db, &uid).await?))
}

async fn delete_entity(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(uid): ApiPath<String>,
) -> ApiResult<StatusCode> {
    store::delete_entity(&state.core.db, &caller, &uid).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ByRefs {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Vec<String>,
}

/// `POST /entities/by-refs`: entities in the order asked, `null` for unknown ones.
async fn entities_by_refs(
    State(state): State<AppState>,
    Json(body): Json<ByRefs>,
) -> ApiResult<Json<Value>> {
    if body.entity_refs.len() > 1000 {
        return Err(CoreError::Invalid {
            field: "entityRefs",
            message: "at most 1000 references per call".into(),
        }
        .into());
    }
    let mut items = Vec::with_capacity(body.entity_refs.len());
    for raw in &body.entity_refs {
        let entity = match model::EntityRef::parse(raw, None, model::DEFAULT_NAMESPACE) {
            Ok(r) => match store::entity_by_ref(&state.core.db, &r.to_string()).await {
                Ok(e) => query::project(&e, &body.fields),
                Err(CoreError::NotFound(_)) => Value::Null,
                Err(e) => return Err(e.into()),
            },
            Err(_) => Value::Null,
        };
        items.push(entity);
    }
    Ok(Json(json!({ "items": items })))
}

/// `GET /entity-facets?facet=kind&facet=spec.type&filter=...`.
async fn entity_facets(State(state): State<AppState>, p: QueryPairs) -> ApiResult<Json<Value>> {
    let keys = p.all("facet");
    if keys.is_empty() {
        return Err(CoreError::Invalid {
            field: "facet",
            message: "name at least one facet, e.g. ?facet=kind".into(),
        }
        .into());
    }
    let facets = state
        .core
        .facet_cache
        .facets(
            &state.core.db,
            &keys,
            &query::Filter::parse(&p.all("filter"))?,
        )
        .await?;
    let body: serde_json::Map<String, Value> = facets
        .into_iter()
        .map(|(k, values)| {
            (
                k,
                Value::Array(
                    values
                        .into_iter()
                        .map(|(value, count)| json!({"value": value, "count": count}))
                        .collect(),
                ),
            )
        })
        .collect();
    Ok(Json(json!({ "facets": body })))
}

fn location_json(l: &store::LocationInfo) -> Value {
    json!({"id": l.id, "type": l.kind, "target": l.target, "status": l.status, "lastRefreshAt": l.last_refresh_at,
           "entityCount": l.entity_count, "problemCount": l.problem_count})
}

async fn list_locations(State(state): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let locations = store::locations(&state.core.db).await?;
    Ok(Json(
        locations
            .iter()
            .map(|l| json!({ "data": location_json(l) }))
            .collect(),
    ))
}

async fn get_location(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(location_json(
        &store::location(&state.core.db, &id).await?,
    )))
}

async fn get_location_problems(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    store::location(&state.core.db, &id).await?;
    Ok(Json(
        json!({ "problems": store::location_problems(&state.core.db, &id).await? }),
    ))
}

#[derive(Deserialize)]
struct NewLocation {
    #[serde(rename = "type")]
    kind: String,
    target: String,
}

/// `POST /locations[?dryRun=true]`: registers (platform admins) and ingests at once.
async fn add_location(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    p: QueryPairs,
    Json(body): Json<NewLocation>,
) -> ApiResult<Response> {
    let dry_run = p.first("dryRun").is_some_and(|v| v == "true");
    let (location, found) = store::register_location(
        &state.core.db,
        &state.core.catalog,
        &caller,
        &body.kind,
        &body.target,
        dry_run,
    )
    .await?;
    let entities: Vec<Value> = found
        .entities
        .iter()
        .map(|e| e.entity.body.clone())
        .collect();
    let mut response = json!({
        "location": location.as_ref().map(location_json).unwrap_or_else(|| json!({"type": body.kind, "target": body.target})),
        "entities": entities,
        "problems": found.problems,
    });
    if dry_run {
        let exists = store::locations(&state.core.db)
            .await?
            .iter()
            .any(|l| l.kind == body.kind && l.target == body.target);
        response["exists"] = json!(exists);
    }
    // Backstage answers 201 for a dry run too, and its client insists on it.
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

async fn delete_location(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    store::delete_location(&state.core.db, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ValidateBody {
    entity: Value,
}

/// `POST /validate-entity`: 200 when valid, 400 with every field problem otherwise.
async fn validate_entity(
    State(state): State<AppState>,
    Json(body): Json<ValidateBody>,
) -> Response {
    match model::validate(&body.entity, &state.core.catalog.kinds) {
        Ok(_) => (StatusCode::OK, Json(json!({}))).into_response(),
        Err(problems) => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "errors": problems.iter().map(|p| json!({"name": "InputError", "message": format!("{}: {}", p.field, p.message), "field": p.field})).collect::<Vec<_>>()
            })),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    entity_ref: Option<String>,
}

/// `POST /refresh`: re-reads the location of `entityRef` (any signed-in user
/// may ask; it only re-reads the source), or every location for admins.
async fn refresh(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    Json(body): Json<RefreshBody>,
) -> ApiResult<StatusCode> {
    let db = &state.core.db;
    match body.entity_ref {
        Some(raw) => {
            let r = model::EntityRef::parse(&raw, None, model::DEFAULT_NAMESPACE).map_err(
                |message| CoreError::Invalid {
                    field: "entityRef",
                    message,
                },
            )?;
            state
                .core
                .refresher
                .refresh_entity(db, &state.core.catalog, &caller, &r.to_string())
                .await?;
        }
        None => {
            authorize(&caller, Action::AdministerPlatform)?;
            store::refresh_all(db, &state.core.catalog).await?;
        }
    }
    Ok(StatusCode::OK)
}

/// The OpenAPI document for this API.
async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("../../docs/catalog-openapi.json"),
    )
        .into_response()
}
