//! `/api/budgets/v1`: team budgets, usage, gateway keys and prices for
//! automation, with bearer tokens and exactly the UI's rules (the domain
//! functions authorize every call).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, put};
use axum::{Extension, Json, Router};
use jiff::Timestamp;
use paved_core::auth::Principal;
use paved_core::budgets::{self, keys, prices, usage, BudgetInput};
use paved_core::gateway::settings;
use paved_core::CoreError;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::extract::{ApiPath, JsonObject, QueryPairs};
use crate::AppState;

/// The budgets API routes (mounted at `/api/budgets/v1`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/teams/{team}", get(get_team).put(put_team))
        .route("/teams/{team}/all", get(get_all))
        .route(
            "/teams/{team}/workspaces/{workspace}",
            get(get_workspace).put(put_workspace),
        )
        .route("/teams/{team}/history", get(history))
        .route("/teams/{team}/usage", get(team_usage))
        .route("/teams/{team}/usage.csv", get(team_csv))
        .route("/teams/{team}/keys", get(list_keys).post(create_key))
        .route("/teams/{team}/keys/{id}", delete(revoke_key))
        .route(
            "/teams/{team}/gateway-settings",
            get(get_settings).put(put_settings),
        )
        .route("/teams/{team}/request-logs", get(request_logs))
        .route("/teams/{team}/cache-savings", get(cache_savings))
        .route("/teams/{team}/provider-keys", get(provider_keys))
        .route("/usage.csv", get(all_csv))
        .route("/prices", get(list_prices))
        .route(
            "/prices/{provider}/{model}",
            put(put_price).delete(delete_price),
        )
        .route("/circuits", get(circuits))
}

async fn get_team(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<budgets::BudgetView>> {
    let core = &state.core;
    Ok(Json(
        budgets::budget(&core.db, &core.budgets.ledger, &p, &team, "").await?,
    ))
}

async fn get_all(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<Vec<budgets::BudgetView>>> {
    let core = &state.core;
    Ok(Json(
        budgets::team_budgets(&core.db, &core.budgets.ledger, &p, &team).await?,
    ))
}

async fn get_workspace(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((team, workspace)): ApiPath<(String, String)>,
) -> ApiResult<Json<budgets::BudgetView>> {
    let core = &state.core;
    Ok(Json(
        budgets::budget(&core.db, &core.budgets.ledger, &p, &team, &workspace).await?,
    ))
}

async fn set(
    state: &AppState,
    p: &Principal,
    team: &str,
    workspace: &str,
    body: JsonObject,
) -> ApiResult<Json<budgets::BudgetView>> {
    let input = BudgetInput::from_json(&Value::Object(body.0))?;
    let core = &state.core;
    Ok(Json(
        budgets::set_budget(
            &core.db,
            &core.budgets.ledger,
            p,
            team,
            workspace,
            input,
            &core.gateway.priced_models(),
        )
        .await?,
    ))
}

async fn put_team(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
    body: JsonObject,
) -> ApiResult<Json<budgets::BudgetView>> {
    set(&state, &p, &team, "", body).await
}

async fn put_workspace(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((team, workspace)): ApiPath<(String, String)>,
    body: JsonObject,
) -> ApiResult<Json<budgets::BudgetView>> {
    set(&state, &p, &team, &workspace, body).await
}

async fn history(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<Vec<budgets::BudgetVersion>>> {
    Ok(Json(budgets::history(&state.core.db, &p, &team).await?))
}

/// `from`/`to` as RFC 3339 instants or local dates (`2026-11-01`, local midnight).
fn instant(
    raw: Option<String>,
    field: &'static str,
    tz: &jiff::tz::TimeZone,
) -> Result<Option<i64>, CoreError> {
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(t) = raw.parse::<Timestamp>() {
        return Ok(Some(t.as_millisecond()));
    }
    raw.parse::<jiff::civil::Date>()
        .ok()
        .and_then(|d| d.to_zoned(tz.clone()).ok())
        .map(|z| Some(z.timestamp().as_millisecond()))
        .ok_or_else(|| CoreError::Invalid {
            field,
            message: format!("`{raw}` is not a date (2026-11-01) or an RFC 3339 time"),
        })
}

/// The range asked for; the current team period (or the last 30 days) by default.
fn range(state: &AppState, team: &str, q: &QueryPairs) -> Result<(i64, i64), CoreError> {
    let ledger = &state.core.budgets.ledger;
    let tz = ledger.time_zone();
    let (default_from, default_to) = ledger.period_or_recent(team, 30);
    let from = instant(q.first("from"), "from", tz)?.unwrap_or(default_from);
    let to = instant(q.first("to"), "to", tz)?.unwrap_or(default_to);
    Ok((from, to))
}

async fn team_usage(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let by_raw = q.first("group_by").unwrap_or_else(|| "model".into());
    let by = usage::GroupBy::parse(&by_raw).ok_or_else(|| CoreError::Invalid {
        field: "group_by",
        message: format!("`{by_raw}` is not model, workspace, day, caller or feature"),
    })?;
    let (from, to) = range(&state, &team, &q)?;
    let tz = state.core.budgets.ledger.time_zone();
    let groups = usage::report(&state.core.db, tz, &p, &team, from, to, by).await?;
    Ok(Json(json!({
        "team": team,
        "from": budgets::ledger::rfc3339(from, tz),
        "to": budgets::ledger::rfc3339(to, tz),
        "group_by": by_raw,
        "groups": groups,
    })))
}

async fn get_settings(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<settings::GatewaySettings>> {
    let core = &state.core;
    Ok(Json(
        settings::get(&core.gateway.settings, &core.db, &p, &team).await?,
    ))
}

async fn put_settings(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<settings::GatewaySettings>> {
    let input: settings::GatewaySettings =
        serde_json::from_value(Value::Object(body)).map_err(|e| CoreError::Invalid {
            field: "body",
            message: format!("is not gateway settings: {e}"),
        })?;
    let core = &state.core;
    Ok(Json(
        settings::set(&core.gateway.settings, &core.db, &p, &team, input).await?,
    ))
}

async fn request_logs(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let number = |name: &'static str| -> Result<Option<i64>, CoreError> {
        q.first(name)
            .map(|raw| {
                raw.parse::<i64>().map_err(|_| CoreError::Invalid {
                    field: name,
                    message: format!("`{raw}` is not a number"),
                })
            })
            .transpose()
    };
    let (before, limit) = (number("before")?, number("limit")?.unwrap_or(50));
    let core = &state.core;
    let tz = core.budgets.ledger.time_zone();
    let entries = settings::request_logs(&core.db, tz, &p, &team, before, limit).await?;
    let next = (entries.len() as i64 == limit.clamp(1, 200))
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(
        json!({"team": team, "entries": entries, "next_before": next}),
    ))
}

async fn cache_savings(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
    q: QueryPairs,
) -> ApiResult<Json<Value>> {
    let (from, _) = range(&state, &team, &q)?;
    let core = &state.core;
    let savings = settings::cache_savings(&core.db, &p, &team, from).await?;
    let tz = core.budgets.ledger.time_zone();
    Ok(Json(json!({
        "team": team,
        "from": budgets::ledger::rfc3339(from, tz),
        "features": savings,
    })))
}

async fn provider_keys(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let core = &state.core;
    let tz = core.budgets.ledger.time_zone();
    let age = settings::provider_key_age(
        &core.gateway.settings,
        &core.db,
        tz,
        &p,
        &team,
        paved_core::now_unix(),
    )
    .await?;
    Ok(Json(json!({"team": team, "own_keys": age})))
}

fn csv(body: String, name: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn team_csv(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
    q: QueryPairs,
) -> ApiResult<Response> {
    let (from, to) = range(&state, &team, &q)?;
    let body = usage::export_csv(&state.core.db, &p, Some(&team), from, to).await?;
    Ok(csv(body, &format!("llm-usage-{team}.csv")))
}

async fn all_csv(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    q: QueryPairs,
) -> ApiResult<Response> {
    let ledger = &state.core.budgets.ledger;
    let now = ledger.now_ms();
    let from =
        instant(q.first("from"), "from", ledger.time_zone())?.unwrap_or(now - 30 * 86_400_000);
    let to = instant(q.first("to"), "to", ledger.time_zone())?.unwrap_or(now + 1);
    let body = usage::export_csv(&state.core.db, &p, None, from, to).await?;
    Ok(csv(body, "llm-usage.csv"))
}

async fn list_keys(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
) -> ApiResult<Json<Vec<keys::GatewayKeyInfo>>> {
    Ok(Json(keys::list(&state.core.db, &p, &team).await?))
}

async fn create_key(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath(team): ApiPath<String>,
    JsonObject(value): JsonObject,
) -> ApiResult<Response> {
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .ok_or(CoreError::Invalid {
            field: "name",
            message: "is required".into(),
        })?;
    let workspace = match value.get("workspace_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => {
            return Err(CoreError::Invalid {
                field: "workspace_id",
                message: "must be a string".into(),
            }
            .into())
        }
    };
    let created = keys::create(&state.core.db, &p, &team, name, workspace).await?;
    let mut answer = serde_json::to_value(&created.info).unwrap_or_default();
    answer["key"] = Value::String(created.value.expose_secret().to_owned());
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn revoke_key(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((team, id)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    budgets::revoke_key(&state.core, &p, &team, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_prices(
    State(state): State<AppState>,
    Extension(_p): Extension<Principal>,
) -> ApiResult<Json<Vec<prices::PriceRow>>> {
    Ok(Json(prices::list_all(&state.core.db).await?))
}

async fn put_price(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((provider, model)): ApiPath<(String, String)>,
    JsonObject(value): JsonObject,
) -> ApiResult<Json<prices::PriceRow>> {
    let field = |name: &str| match value.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let row = budgets::set_price(
        &state.core,
        &p,
        &provider,
        &model,
        &field("input_usd_per_mtok"),
        &field("output_usd_per_mtok"),
    )
    .await?;
    Ok(Json(row))
}

async fn delete_price(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiPath((provider, model)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    budgets::remove_price(&state.core, &p, &provider, &model).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn circuits(
    State(state): State<AppState>,
    Extension(_p): Extension<Principal>,
) -> Json<Vec<paved_core::gateway::breaker::CircuitInfo>> {
    Json(state.core.gateway.breakers.list(std::time::Instant::now()))
}
