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

use crate::error::{ApiError, ErrorBody};
use crate::openapi::BearerAuth;
use crate::AppState;
use std::collections::BTreeMap;
use utoipa::{OpenApi, ToSchema};

/// The OpenAPI document of this API, generated from the handlers and types
/// below (committed as `docs/catalog-openapi.json`; a test keeps them equal).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Paved catalog API",
        version = "1.0.0",
        description = "Backstage-compatible catalog API at PAVED_PUBLIC_URL/api/catalog. Send `Authorization: Bearer <token>` (a personal API token or a service token). Every signed-in caller reads; platform admins write."
    ),
    servers((url = "/api/catalog")),
    paths(
        list_entities,
        entities_by_query,
        entity_by_name,
        entity_by_uid,
        delete_entity,
        entities_by_refs,
        entity_facets,
        list_locations,
        add_location,
        get_location,
        delete_location,
        get_location_problems,
        validate_entity,
        refresh
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct CatalogApi;

/// A catalog entity as authored (Backstage's shape; unknown fields are kept).
// Entities are stored and served as raw JSON; this type only describes them.
#[derive(ToSchema)]
#[schema(as = Entity)]
#[allow(dead_code)]
struct EntityDoc {
    #[schema(rename = "apiVersion")]
    api_version: String,
    kind: String,
    metadata: EntityMetadataDoc,
    #[schema(value_type = Option<Object>)]
    spec: Option<Value>,
    relations: Option<Vec<RelationDoc>>,
}

/// An entity's metadata (other fields such as title, labels and annotations are kept as authored).
#[derive(ToSchema)]
#[schema(as = EntityMetadata)]
#[allow(dead_code)]
struct EntityMetadataDoc {
    name: String,
    namespace: Option<String>,
    uid: Option<String>,
    etag: Option<String>,
}

/// A relation to another entity, computed by the catalog.
#[derive(ToSchema)]
#[schema(as = Relation)]
#[allow(dead_code)]
struct RelationDoc {
    #[schema(rename = "type")]
    kind: String,
    #[schema(rename = "targetRef")]
    target_ref: String,
}

/// A problem found reading a location.
// `catalog::crawl::Problem` is serialized as is; this type only describes it.
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
struct ProblemDoc {
    /// The file or URL.
    source: String,
    /// Which YAML document (0-based), when the problem is inside one.
    document: Option<usize>,
    /// The entity's `kind:namespace/name`, when known.
    entity_ref: Option<String>,
    /// The field path, when the problem is a field.
    field: Option<String>,
    /// What is wrong.
    message: String,
}

/// The refusals every call of this API may answer with.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum Refusals {
    /// Not signed in / no valid bearer token
    #[response(status = 401)]
    Unauthorized(ErrorBody),
}

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
#[utoipa::path(
    get,
    path = "/entities",
    summary = "List entities (array form)",
    params(
        ("filter" = Option<Vec<String>>, Query, style = Form, explode, description = "Backstage filter, e.g. kind=component,spec.type=service. Repeat for OR."),
        ("fields" = Option<Vec<String>>, Query, style = Form, explode, description = "Comma-separated dotted paths to return, e.g. metadata.name,kind."),
        ("offset" = Option<i64>, Query, description = "Rows to skip"),
        ("limit" = Option<i64>, Query, description = "At most 1000"),
        ("order" = Option<Vec<String>>, Query, style = Form, explode, description = "asc:metadata.name or metadata.name,desc"),
    ),
    responses(
        (status = 200, description = "OK", body = Vec<EntityDoc>),
        (status = 400, description = "A filter, order or number that cannot be read", body = ErrorBody),
        Refusals,
    )
)]
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
    let (json, _) = query::run_json_cached(&state.core.db, &state.core.facet_cache, &q).await?;
    Ok(Json(raw_items(json, &fields(&p))?))
}

/// A page of entities.
#[derive(serde::Serialize, ToSchema)]
struct QueryAnswer {
    #[schema(value_type = Vec<EntityDoc>)]
    items: Vec<Box<RawValue>>,
    /// Entities matching, on every page.
    #[serde(rename = "totalItems")]
    #[schema(rename = "totalItems")]
    total_items: i64,
    #[serde(rename = "pageInfo")]
    #[schema(rename = "pageInfo")]
    page_info: PageInfo,
}

/// Cursors to the pages around this one, when there are any.
#[derive(serde::Serialize, ToSchema, Default)]
struct PageInfo {
    #[serde(rename = "nextCursor", skip_serializing_if = "Option::is_none")]
    #[schema(rename = "nextCursor")]
    next_cursor: Option<String>,
    #[serde(rename = "prevCursor", skip_serializing_if = "Option::is_none")]
    #[schema(rename = "prevCursor")]
    prev_cursor: Option<String>,
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
#[utoipa::path(
    get,
    path = "/entities/by-query",
    summary = "Query entities with paging",
    params(
        ("filter" = Option<Vec<String>>, Query, style = Form, explode, description = "Backstage filter, e.g. kind=component,spec.type=service. Repeat for OR."),
        ("fields" = Option<Vec<String>>, Query, style = Form, explode, description = "Comma-separated dotted paths to return, e.g. metadata.name,kind."),
        ("orderField" = Option<Vec<String>>, Query, style = Form, explode, description = "metadata.name,asc"),
        ("fullTextFilterTerm" = Option<String>, Query, description = "Words to search for"),
        ("limit" = Option<i64>, Query, description = "Page size, at most 500"),
        ("offset" = Option<i64>, Query, description = "Rows to skip (first page only)"),
        ("cursor" = Option<String>, Query, description = "A `nextCursor` or `prevCursor` from an earlier page; it carries the filter, order and search"),
    ),
    responses(
        (status = 200, description = "OK", body = QueryAnswer),
        (status = 400, description = "A filter, order, number or cursor that cannot be read", body = ErrorBody),
        Refusals,
    )
)]
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
    let (json, total) = query::run_json_cached(&state.core.db, &state.core.facet_cache, &q).await?;
    let mut page_info = PageInfo::default();
    if cursor.offset + limit < total {
        page_info.next_cursor = Some(encode_cursor(&Cursor {
            offset: cursor.offset + limit,
            ..cursor_clone(&cursor)
        }));
    }
    if cursor.offset > 0 {
        page_info.prev_cursor = Some(encode_cursor(&Cursor {
            offset: (cursor.offset - limit).max(0),
            ..cursor_clone(&cursor)
        }));
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

/// `GET /entities/by-name/{kind}/{namespace}/{name}`.
#[utoipa::path(
    get,
    path = "/entities/by-name/{kind}/{namespace}/{name}",
    summary = "One entity by reference",
    params(
        ("kind" = String, Path, description = "e.g. component (any case)"),
        ("namespace" = String, Path, description = "e.g. default"),
        ("name" = String, Path),
    ),
    responses(
        (status = 200, description = "OK", body = EntityDoc),
        (status = 404, description = "No such entity", body = ErrorBody),
        Refusals,
    )
)]
async fn entity_by_name(
    State(state): State<AppState>,
    ApiPath((kind, namespace, name)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        store::entity_by_ref(&state.core.db, &format!("{kind}:{namespace}/{name}")).await?,
    ))
}

/// `GET /entities/by-uid/{uid}`.
#[utoipa::path(
    get,
    path = "/entities/by-uid/{uid}",
    summary = "One entity by uid",
    params(("uid" = String, Path)),
    responses(
        (status = 200, description = "OK", body = EntityDoc),
        (status = 404, description = "No such entity", body = ErrorBody),
        Refusals,
    )
)]
async fn entity_by_uid(
    State(state): State<AppState>,
    ApiPath(uid): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(store::entity_by_uid(&state.core.db, &uid).await?))
}

/// `DELETE /entities/by-uid/{uid}`.
#[utoipa::path(
    delete,
    path = "/entities/by-uid/{uid}",
    summary = "Delete an entity (platform admins); it returns at the next refresh if its source still has it",
    params(("uid" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Only platform admins delete entities", body = ErrorBody),
        (status = 404, description = "No such entity", body = ErrorBody),
        Refusals,
    )
)]
async fn delete_entity(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(uid): ApiPath<String>,
) -> ApiResult<StatusCode> {
    store::delete_entity(&state.core.db, &caller, &uid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// References to look up.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct ByRefs {
    /// Up to 1000 references, e.g. `component:default/petstore`.
    #[schema(rename = "entityRefs")]
    entity_refs: Vec<String>,
    /// Dotted paths to return, e.g. `metadata.name`.
    #[serde(default)]
    fields: Vec<String>,
}

/// Entities in the order asked.
#[derive(serde::Serialize, ToSchema)]
struct ByRefsAnswer {
    /// `null` where a reference names no entity.
    #[schema(value_type = Vec<Option<EntityDoc>>)]
    items: Vec<Value>,
}

/// `POST /entities/by-refs`: entities in the order asked, `null` for unknown ones.
#[utoipa::path(
    post,
    path = "/entities/by-refs",
    summary = "Entities by references, in order; null for unknown",
    request_body = ByRefs,
    responses(
        (status = 200, description = "OK", body = ByRefsAnswer),
        (status = 400, description = "More than 1000 references, or a body that cannot be read", body = ErrorBody),
        Refusals,
    )
)]
async fn entities_by_refs(
    State(state): State<AppState>,
    Json(body): Json<ByRefs>,
) -> ApiResult<Json<ByRefsAnswer>> {
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
    Ok(Json(ByRefsAnswer { items }))
}

/// Value counts per facet.
#[derive(serde::Serialize, ToSchema)]
struct FacetsAnswer {
    /// For each facet asked, its values and how many entities have each.
    facets: BTreeMap<String, Vec<FacetCount>>,
}

/// How many entities have a value.
#[derive(serde::Serialize, ToSchema)]
struct FacetCount {
    value: String,
    count: i64,
}

/// `GET /entity-facets?facet=kind&facet=spec.type&filter=...`.
#[utoipa::path(
    get,
    path = "/entity-facets",
    summary = "Value counts per facet",
    params(
        ("facet" = Vec<String>, Query, style = Form, explode, description = "e.g. kind, spec.type, metadata.tags"),
        ("filter" = Option<Vec<String>>, Query, style = Form, explode, description = "Backstage filter, e.g. kind=component,spec.type=service. Repeat for OR."),
    ),
    responses(
        (status = 200, description = "OK", body = FacetsAnswer),
        (status = 400, description = "No facet named, or a filter that cannot be read", body = ErrorBody),
        Refusals,
    )
)]
async fn entity_facets(
    State(state): State<AppState>,
    p: QueryPairs,
) -> ApiResult<Json<FacetsAnswer>> {
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
    let facets = facets
        .into_iter()
        .map(|(k, values)| {
            let counts = values
                .into_iter()
                .map(|(value, count)| FacetCount { value, count })
                .collect();
            (k, counts)
        })
        .collect();
    Ok(Json(FacetsAnswer { facets }))
}

/// A registered location.
#[derive(serde::Serialize, ToSchema)]
struct Location {
    id: String,
    /// `url` or `file`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    kind: String,
    /// The URL or path.
    target: String,
    /// `pending`, `ok`, `problems` or `failed`.
    status: String,
    /// Unix seconds of the last refresh.
    #[serde(rename = "lastRefreshAt")]
    #[schema(rename = "lastRefreshAt")]
    last_refresh_at: Option<i64>,
    /// Entities it provides.
    #[serde(rename = "entityCount")]
    #[schema(rename = "entityCount")]
    entity_count: i64,
    /// Problems of its last refresh.
    #[serde(rename = "problemCount")]
    #[schema(rename = "problemCount")]
    problem_count: i64,
}

impl From<&store::LocationInfo> for Location {
    fn from(l: &store::LocationInfo) -> Self {
        Self {
            id: l.id.clone(),
            kind: l.kind.clone(),
            target: l.target.clone(),
            status: l.status.clone(),
            last_refresh_at: l.last_refresh_at,
            entity_count: l.entity_count,
            problem_count: l.problem_count,
        }
    }
}

/// One item of the location list, as Backstage wraps it.
#[derive(serde::Serialize, ToSchema)]
struct LocationItem {
    data: Location,
}

/// `GET /locations`.
#[utoipa::path(
    get,
    path = "/locations",
    summary = "Registered locations",
    responses((status = 200, description = "OK", body = Vec<LocationItem>), Refusals)
)]
async fn list_locations(State(state): State<AppState>) -> ApiResult<Json<Vec<LocationItem>>> {
    let locations = store::locations(&state.core.db).await?;
    Ok(Json(
        locations
            .iter()
            .map(|l| LocationItem { data: l.into() })
            .collect(),
    ))
}

/// `GET /locations/{id}`.
#[utoipa::path(
    get,
    path = "/locations/{id}",
    summary = "One location",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = Location),
        (status = 404, description = "No such location", body = ErrorBody),
        Refusals,
    )
)]
async fn get_location(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Location>> {
    Ok(Json((&store::location(&state.core.db, &id).await?).into()))
}

/// The problems of a location's last refresh.
#[derive(serde::Serialize, ToSchema)]
struct ProblemsAnswer {
    #[schema(value_type = Vec<ProblemDoc>)]
    problems: Vec<paved_core::catalog::crawl::Problem>,
}

/// `GET /locations/{id}/problems`.
#[utoipa::path(
    get,
    path = "/locations/{id}/problems",
    summary = "The problems of the location's last refresh",
    params(("id" = String, Path)),
    responses(
        (status = 200, description = "OK", body = ProblemsAnswer),
        (status = 404, description = "No such location", body = ErrorBody),
        Refusals,
    )
)]
async fn get_location_problems(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<ProblemsAnswer>> {
    store::location(&state.core.db, &id).await?;
    Ok(Json(ProblemsAnswer {
        problems: store::location_problems(&state.core.db, &id).await?,
    }))
}

/// A location to register.
#[derive(Deserialize, ToSchema)]
struct NewLocation {
    /// `url` or `file`.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    kind: String,
    /// The URL, or a path under `PAVED_CATALOG_FILE_ROOTS`.
    target: String,
}

/// What a registration read.
#[derive(serde::Serialize, ToSchema)]
struct Registered {
    /// The location (on a dry run of a new one, only its type and target).
    #[schema(value_type = Location)]
    location: Value,
    // Each entity exactly as stored text: parsing 13,000 of them again only
    // to print them took 110 MB.
    #[schema(value_type = Vec<EntityDoc>)]
    entities: Vec<Box<serde_json::value::RawValue>>,
    #[schema(value_type = Vec<ProblemDoc>)]
    problems: Vec<paved_core::catalog::crawl::Problem>,
    /// Dry runs only: whether the location is registered already.
    #[serde(skip_serializing_if = "Option::is_none")]
    exists: Option<bool>,
}

/// `POST /locations[?dryRun=true]`: registers (platform admins) and ingests at once.
#[utoipa::path(
    post,
    path = "/locations",
    summary = "Register a location and ingest it (platform admins)",
    params(("dryRun" = Option<String>, Query, description = "true to only report what would be ingested")),
    request_body = NewLocation,
    responses(
        (status = 201, description = "Registered (or, with dryRun=true, what would be registered; `exists` says whether it already is)", body = Registered),
        (status = 403, description = "Only platform admins register locations", body = ErrorBody),
        (status = 409, description = "The location is registered already", body = ErrorBody),
        (status = 422, description = "A type, target or host that is not allowed", body = ErrorBody),
        Refusals,
    )
)]
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
    let entities = found
        .entities
        .iter()
        .map(|e| serde_json::value::RawValue::from_string(e.body_text().to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            tracing::error!(error = %e, "a crawled entity is not JSON");
            ApiError::status(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the entities read could not be listed",
            )
        })?;
    let location = match &location {
        Some(l) => serde_json::to_value(Location::from(l)).unwrap_or_default(),
        None => json!({"type": body.kind, "target": body.target}),
    };
    let exists = if dry_run {
        Some(
            store::locations(&state.core.db)
                .await?
                .iter()
                .any(|l| l.kind == body.kind && l.target == body.target),
        )
    } else {
        None
    };
    let response = Registered {
        location,
        entities,
        problems: found.problems,
        exists,
    };
    // Backstage answers 201 for a dry run too, and its client insists on it.
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

/// `DELETE /locations/{id}`.
#[utoipa::path(
    delete,
    path = "/locations/{id}",
    summary = "Unregister a location and remove its entities (platform admins)",
    params(("id" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Only platform admins unregister locations", body = ErrorBody),
        (status = 404, description = "No such location", body = ErrorBody),
        Refusals,
    )
)]
async fn delete_location(
    State(state): State<AppState>,
    Extension(caller): Extension<Principal>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    store::delete_location(&state.core.db, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An entity to check.
#[derive(Deserialize, ToSchema)]
struct ValidateBody {
    #[schema(value_type = EntityDoc)]
    entity: Value,
    /// Where it would come from (accepted, as Backstage's client sends it).
    #[allow(dead_code)]
    location: Option<String>,
}

/// Every problem with an entity.
#[derive(serde::Serialize, ToSchema)]
struct ValidationErrors {
    errors: Vec<FieldError>,
}

/// One field's problem.
#[derive(serde::Serialize, ToSchema)]
struct FieldError {
    /// `InputError`.
    name: &'static str,
    /// The field and what is wrong with it.
    message: String,
    /// The field path, e.g. `metadata.name`.
    field: String,
}

/// `POST /validate-entity`: 200 when valid, 400 with every field problem otherwise.
#[utoipa::path(
    post,
    path = "/validate-entity",
    summary = "Validate an entity",
    request_body = ValidateBody,
    responses(
        (status = 200, description = "Valid"),
        (status = 400, description = "Invalid: every problem, each naming its field", body = ValidationErrors),
        Refusals,
    )
)]
async fn validate_entity(
    State(state): State<AppState>,
    Json(body): Json<ValidateBody>,
) -> Response {
    match model::validate(&body.entity, &state.core.catalog.kinds) {
        Ok(_) => (StatusCode::OK, Json(json!({}))).into_response(),
        Err(problems) => (
            StatusCode::BAD_REQUEST,
            Json(ValidationErrors {
                errors: problems
                    .into_iter()
                    .map(|p| FieldError {
                        name: "InputError",
                        message: format!("{}: {}", p.field, p.message),
                        field: p.field,
                    })
                    .collect(),
            }),
        )
            .into_response(),
    }
}

/// What to refresh.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct RefreshBody {
    /// The entity whose location to re-read; absent: every location (platform admins).
    #[schema(rename = "entityRef")]
    entity_ref: Option<String>,
}

/// `POST /refresh`: re-reads the location of `entityRef` (any signed-in user
/// may ask; it only re-reads the source), or every location for admins.
#[utoipa::path(
    post,
    path = "/refresh",
    summary = "Re-read the location of an entity (anyone), or every location (platform admins)",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "Refreshed"),
        (status = 403, description = "Only platform admins refresh every location", body = ErrorBody),
        (status = 404, description = "No such entity", body = ErrorBody),
        (status = 429, description = "Refreshed too often; try again shortly", body = ErrorBody),
        Refusals,
    )
)]
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

/// `POST /api/catalog/webhooks/github`: GitHub's webhook deliveries
/// (`push`, `ping`), checked against the integration's webhook secret. A push
/// refreshes exactly the locations it changes, in the background; the answer
/// says which. Served without a session: the signature is the authentication.
pub async fn github_webhook(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let event = header("x-github-event").ok_or_else(|| CoreError::Invalid {
        field: "X-GitHub-Event",
        message: "is required (this endpoint takes GitHub webhook deliveries)".into(),
    })?;
    let signature = header("x-hub-signature-256").ok_or(ApiError::Request {
        status: StatusCode::UNAUTHORIZED,
        message: "X-Hub-Signature-256 is required: set a secret on the webhook".into(),
    })?;
    let payload: Value = serde_json::from_slice(&body).map_err(|_| CoreError::Invalid {
        field: "body",
        message: "is not JSON (set the webhook's content type to application/json)".into(),
    })?;
    let repo_url = payload["repository"]["html_url"]
        .as_str()
        .and_then(|u| url::Url::parse(u).ok())
        .ok_or_else(|| CoreError::Invalid {
            field: "repository.html_url",
            message: "is missing".into(),
        })?;
    let integrations = &state.core.integrations;
    let integration = integrations
        .for_url(&repo_url)
        .filter(|i| i.kind.is_github())
        .ok_or_else(|| {
            CoreError::NotFound(format!(
                "{} is not a GitHub host configured in PAVED_INTEGRATIONS",
                repo_url.host_str().unwrap_or_default()
            ))
        })?;
    integrations
        .verify_webhook(integration, &body, &signature)
        .await
        .map_err(|message| ApiError::Request {
            status: StatusCode::UNAUTHORIZED,
            message,
        })?;
    if event == "ping" {
        return Ok(Json(json!({"ok": true})).into_response());
    }
    if event != "push" {
        return Ok((StatusCode::ACCEPTED, Json(json!({"ignored": event}))).into_response());
    }
    let full_name = payload["repository"]["full_name"]
        .as_str()
        .unwrap_or_default();
    let Some(branch) = payload["ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("refs/heads/"))
    else {
        return Ok((StatusCode::ACCEPTED, Json(json!({"refreshed": []}))).into_response());
    };
    let ids =
        store::locations_for_push(&state.core.db, &integration.host, full_name, branch).await?;
    let core = state.core.clone();
    let refreshing = ids.clone();
    tokio::spawn(async move {
        for id in refreshing {
            if let Err(e) = store::refresh_location(&core.db, &core.catalog, &id).await {
                tracing::warn!(location = %id, error = %e, "refresh after a push failed");
            }
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({"refreshed": ids}))).into_response())
}

/// The OpenAPI document for this API.
async fn openapi() -> Response {
    Json(CatalogApi::openapi()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/catalog-openapi.json` is what the code generates. After changing
    /// the API, `PAVED_WRITE_OPENAPI=1 cargo test -p paved openapi` rewrites it.
    #[test]
    fn the_committed_openapi_document_is_the_generated_one() {
        crate::openapi::compare(
            &CatalogApi::openapi(),
            concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/catalog-openapi.json"),
        );
    }
}
