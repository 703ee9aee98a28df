//! What a team's Budget page and the platform overview show, assembled from
//! the rules, the ledger, usage and keys in one call each, so the page's
//! server functions and any API return the same figures.

use std::collections::BTreeMap;
use std::time::Instant;

use sqlx::SqlitePool;

use serde_json::Value;

use super::{keys, prices, usage, BudgetChange, BudgetInput, BudgetView};
use crate::auth::{authorize, Action, Principal};
use crate::{CoreError, CoreState};
use paved_shared::budgets::{
    cents_from_nanocents, dollars, BudgetBoard, BudgetForm, BudgetPage, CircuitInfo, DayPoint,
    ModelHealth, NewGatewayKey, Overview, PriceLine,
};
use usage::GroupBy;

/// Everything on `team`'s Budget page: members of the team, platform PMs and admins.
pub async fn budget_page(
    core: &CoreState,
    caller: &Principal,
    team: &str,
) -> Result<BudgetPage, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    let gateway = &core.gateway;
    let ledger = &core.budgets.ledger;
    let tz = ledger.time_zone();
    let (mut team_budget, mut workspaces) = (None, Vec::new());
    for v in super::team_budgets(&core.db, ledger, caller, team).await? {
        if v.workspace_id.is_none() {
            team_budget = Some(v);
        } else {
            workspaces.push(v);
        }
    }
    let now = ledger.now_ms();
    let (start, end) = ledger.period_or_recent(team, 29);
    let report = |by| usage::report(&core.db, tz, caller, team, start, end, by);
    let daily = report(GroupBy::Day).await?;
    let by_model = report(GroupBy::Model).await?;
    let by_workspace = report(GroupBy::Workspace).await?;
    let by_feature = report(GroupBy::Feature).await?;
    let callers = report(GroupBy::Caller).await?;
    let days: Vec<DayPoint> = usage::days_between(start, end, tz)
        .into_iter()
        .map(|day| DayPoint {
            cost_cents: daily
                .iter()
                .find(|d| d.key == day)
                .map_or(0.0, |d| d.cost_cents),
            day,
        })
        .collect();
    let day_keys: Vec<String> = days.iter().map(|d| d.day.clone()).collect();
    let feature_days =
        usage::feature_days(&core.db, tz, caller, team, (start, end), &day_keys).await?;
    let today_key = usage::local_day(now, tz);
    let today = days
        .iter()
        .position(|d| d.day == today_key)
        .unwrap_or(days.len().saturating_sub(1));
    // The headline's spend when there is a budget (the ledger's), else the chart's.
    let spent = team_budget.as_ref().map_or_else(
        || days.iter().map(|d| d.cost_cents).sum(),
        |b| cents_from_nanocents(b.spent_nanocents),
    );
    let history = super::history(&core.db, caller, team)
        .await?
        .into_iter()
        .map(|h| BudgetChange {
            summary: change_summary(h.before.as_deref(), &h.after),
            version: h.version,
            workspace_id: h.workspace_id,
            changed_by: h.changed_by,
            changed_at: h.changed_at,
        })
        .collect();
    let keys = keys::list(&core.db, caller, team).await?;
    let lead = authorize(caller, Action::LeadTeam(team)).is_ok();
    Ok(BudgetPage {
        board: BudgetBoard {
            team: team.to_owned(),
            budget: team_budget,
            days,
            today,
            projected_cents: projection(spent, now, start, end),
            can_edit: lead,
            priced_models: gateway.priced_models(),
        },
        workspaces,
        by_model,
        by_workspace,
        by_feature,
        feature_days,
        callers,
        history,
        keys,
        circuits: circuits(core),
        can_manage_keys: lead,
    })
}

/// Every team's budget, the prices and the breakers: platform PMs and admins.
pub async fn overview(core: &CoreState, caller: &Principal) -> Result<Overview, CoreError> {
    authorize(caller, Action::ViewPlatformInsights)?;
    let mut budgets: Vec<BudgetView> = super::load_rules(&core.db)
        .await?
        .into_iter()
        .map(|r| super::view(r, &core.budgets.ledger))
        .collect();
    budgets.sort_by(|a, b| (&a.team, &a.workspace_id).cmp(&(&b.team, &b.workspace_id)));
    let mut prices: Vec<PriceLine> = prices::list_all(&core.db)
        .await?
        .into_iter()
        .map(|p| price_line(core, p))
        .collect();
    // The models the gateway offers first.
    prices.sort_by(|a, b| {
        (!a.routed, &a.provider, &a.model).cmp(&(!b.routed, &b.provider, &b.model))
    });
    let models = model_health(&core.db, core.budgets.ledger.now_ms() - 86_400_000).await?;
    Ok(Overview {
        budgets,
        prices,
        circuits: circuits(core),
        can_edit_prices: authorize(caller, Action::AdministerPlatform).is_ok(),
        models,
    })
}

/// Nearest-rank percentile `q` (0..1] of sorted `values`.
fn percentile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// Each model's latency and errors by class since `since_ms`, busiest first.
pub async fn model_health(pool: &SqlitePool, since_ms: i64) -> Result<Vec<ModelHealth>, CoreError> {
    let rows = sqlx::query!(
        "SELECT model, latency_ms, overhead_us, error_type FROM llm_usage WHERE at >= ?1",
        since_ms
    )
    .fetch_all(pool)
    .await?;
    #[derive(Default)]
    struct Acc {
        latency: Vec<i64>,
        added: Vec<i64>,
        errors: BTreeMap<String, u64>,
    }
    let mut by_model: BTreeMap<String, Acc> = BTreeMap::new();
    for r in rows {
        let acc = by_model.entry(r.model).or_default();
        acc.latency.push(r.latency_ms);
        acc.added.extend(r.overhead_us);
        if let Some(class) = r.error_type {
            *acc.errors.entry(class).or_default() += 1;
        }
    }
    let mut out: Vec<ModelHealth> = by_model
        .into_iter()
        .map(|(model, mut acc)| {
            acc.latency.sort_unstable();
            acc.added.sort_unstable();
            let mut errors: Vec<(String, u64)> = acc.errors.into_iter().collect();
            errors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ModelHealth {
                model,
                calls: acc.latency.len() as u64,
                p50_ms: percentile(&acc.latency, 0.5),
                p95_ms: percentile(&acc.latency, 0.95),
                added_p95_ms: percentile(&acc.added, 0.95).map(|us| us as f64 / 1000.0),
                errors,
            }
        })
        .collect();
    out.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.model.cmp(&b.model)));
    Ok(out)
}

/// Saves a budget from the editor through the same validation as the REST
/// API's body: the team budget (`workspace` `None`, conditional on the
/// form's version) or a workspace budget inside it.
pub async fn save(
    core: &CoreState,
    caller: &Principal,
    team: &str,
    workspace: Option<&str>,
    form: BudgetForm,
) -> Result<BudgetView, CoreError> {
    let (workspace, version) = match workspace {
        None => (String::new(), Some(form.version)),
        Some(w) => (super::validate_workspace(w.trim())?, None),
    };
    let body = serde_json::json!({
        "period": form.period,
        "limit_cents": form.limit_cents,
        "soft_alert_percent": form.soft_alert_percent,
        "on_limit": form.on_limit,
        "allowed_models": form.allowed_models,
        "rpm_limit": form.rpm_limit,
        "tpm_limit": form.tpm_limit,
        "version": version,
    });
    let input = BudgetInput::from_json(&body)?;
    super::set_budget(
        &core.db,
        &core.budgets.ledger,
        caller,
        team,
        &workspace,
        input,
        &core.gateway.priced_models(),
    )
    .await
}

/// Creates a gateway key (leads and admins); its value is returned this once.
pub async fn create_key(
    core: &CoreState,
    caller: &Principal,
    team: &str,
    name: &str,
    workspace: &str,
) -> Result<NewGatewayKey, CoreError> {
    use secrecy::ExposeSecret;
    let workspace = Some(workspace.trim()).filter(|w| !w.is_empty());
    let created = keys::create(&core.db, caller, team, name, workspace).await?;
    Ok(NewGatewayKey {
        key: created.value.expose_secret().to_owned(),
        info: created.info,
    })
}

/// Sets a price (platform admins) and lists it as the overview does.
pub async fn save_price(
    core: &CoreState,
    caller: &Principal,
    provider: &str,
    model: &str,
    input_usd: &str,
    output_usd: &str,
) -> Result<PriceLine, CoreError> {
    let row = super::set_price(core, caller, provider, model, input_usd, output_usd).await?;
    Ok(price_line(core, row))
}

fn price_line(core: &CoreState, p: prices::PriceRow) -> PriceLine {
    let routed = core
        .gateway
        .routes()
        .flat_map(|r| &r.deployments)
        .any(|d| d.provider == p.provider && d.price_model == p.model);
    PriceLine {
        routed,
        input_usd: usd(p.input_millicents_per_mtok),
        output_usd: usd(p.output_millicents_per_mtok),
        provider: p.provider,
        model: p.model,
        updated_by: p.updated_by,
    }
}

fn circuits(core: &CoreState) -> Vec<CircuitInfo> {
    core.gateway.breakers.list(Instant::now())
}

/// A straight line through this period so far, never below what is already
/// spent; at least an hour in, so one early call doesn't explode it.
/// The team budget's burn this period and where it is heading (the team's
/// members, PMs and admins); `None` without a team budget.
pub async fn burn(
    core: &CoreState,
    caller: &Principal,
    team: &str,
) -> Result<Option<paved_shared::adoption::Burn>, CoreError> {
    let ledger = &core.budgets.ledger;
    let Some(budget) = super::team_budgets(&core.db, ledger, caller, team)
        .await?
        .into_iter()
        .find(|b| b.workspace_id.is_none())
    else {
        return Ok(None);
    };
    let spent = cents_from_nanocents(budget.spent_nanocents);
    let (start, end) = ledger.period_or_recent(team, 29);
    Ok(Some(paved_shared::adoption::Burn {
        spent_cents: spent,
        limit_cents: budget.limit_cents,
        projected_cents: projection(spent, ledger.now_ms(), start, end),
        period: budget.period.per().to_owned(),
    }))
}

pub fn projection(spent_cents: f64, now_ms: i64, start_ms: i64, end_ms: i64) -> f64 {
    let elapsed = (now_ms - start_ms).max(3_600_000) as f64;
    spent_cents * ((end_ms - start_ms) as f64 / elapsed).max(1.0)
}

/// Dollars per million tokens from millicents: at least cents, more only
/// when the price has them (`0.80`, `0.075`, `2.50`).
pub fn usd(millicents_per_mtok: i64) -> String {
    let whole = millicents_per_mtok / 100_000;
    let frac = millicents_per_mtok % 100_000;
    let mut s = format!("{whole}.{frac:05}");
    while s.ends_with('0') && s.split_once('.').is_some_and(|(_, d)| d.len() > 2) {
        s.pop();
    }
    s
}

/// One history entry in words: "limit $10.00 → $25.00, period monthly → weekly".
pub fn change_summary(before: Option<&str>, after: &str) -> String {
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or_default();
    let after = parse(after);
    let per = |v: &Value| {
        v.as_str()
            .and_then(super::period::Period::parse)
            .unwrap_or_default()
            .per()
    };
    let Some(before) = before.map(parse) else {
        return format!(
            "set to {} {}",
            dollars(after["limit_cents"].as_i64().unwrap_or(0)),
            per(&after["period"])
        );
    };
    let show = |field: &str, v: &Value| -> String {
        match field {
            "limit_cents" => dollars(v.as_i64().unwrap_or(0)),
            "soft_alert_percent" => format!("{}%", v.as_i64().unwrap_or(0)),
            _ if v.is_null() => "none".into(),
            _ => v
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string()),
        }
    };
    let parts: Vec<String> = [
        ("limit_cents", "limit"),
        ("period", "period"),
        ("on_limit", "at the limit"),
        ("soft_alert_percent", "alert"),
        ("allowed_models", "models"),
        ("rpm_limit", "requests/min"),
        ("tpm_limit", "tokens/min"),
    ]
    .into_iter()
    .filter(|(field, _)| before[*field] != after[*field])
    .map(|(field, label)| {
        format!(
            "{label} {} → {}",
            show(field, &before[field]),
            show(field, &after[field])
        )
    })
    .collect();
    if parts.is_empty() {
        "saved without changes".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_show_at_least_cents() {
        assert_eq!(usd(80_000), "0.80");
        assert_eq!(usd(7_500), "0.075");
        assert_eq!(usd(250_000), "2.50");
        assert_eq!(usd(1_500_000), "15.00");
        assert_eq!(usd(1), "0.00001");
    }

    #[test]
    fn history_says_what_changed() {
        let before = r#"{"limit_cents":1000,"period":"monthly","on_limit":"block","soft_alert_percent":80,"allowed_models":[],"rpm_limit":null,"tpm_limit":null}"#;
        let after = r#"{"limit_cents":2500,"period":"weekly","on_limit":"block","soft_alert_percent":80,"allowed_models":[],"rpm_limit":60,"tpm_limit":null}"#;
        assert_eq!(
            change_summary(Some(before), after),
            "limit $10.00 → $25.00, period monthly → weekly, requests/min none → 60"
        );
        assert_eq!(change_summary(None, after), "set to $25.00 per week");
        assert_eq!(change_summary(Some(after), after), "saved without changes");
    }

    #[test]
    fn the_projection_is_never_below_the_spend() {
        let hour = 3_600_000;
        // Ten minutes into a 30-day month: extrapolated from a full hour.
        assert_eq!(projection(10.0, hour / 6, 0, 720 * hour), 7_200.0);
        // Past the end (a period that just rolled): never below what is spent.
        assert_eq!(projection(10.0, 800 * hour, 0, 720 * hour), 10.0);
        assert_eq!(projection(0.0, 5 * hour, 0, 720 * hour), 0.0);
    }
}

#[cfg(test)]
mod model_health_tests {
    use super::*;

    #[sqlx::test(migrations = "../migrations")]
    async fn latency_percentiles_and_errors_by_class_per_model(pool: SqlitePool) {
        // m1: latencies 1..=100 ms, five rate-limited and two upstream
        // failures among them, the gateway adding 1 ms (5 ms to the last
        // five calls); m2: one call without a provider (no added time); an
        // older call outside the window.
        let mut rows = Vec::new();
        for i in 1..=100_i64 {
            let error = match i {
                1..=5 => Some("rate_limited"),
                6..=7 => Some("upstream_5xx"),
                _ => None,
            };
            let added = if i > 95 { 5_000 } else { 1_000 };
            rows.push((1_000 + i, "m1", i, Some(added), error));
        }
        rows.push((1_500, "m2", 3, None, Some("budget_exceeded")));
        rows.push((10, "m1", 9_999, Some(9_000_000), None));
        for (at, model, latency, added, error) in rows {
            sqlx::query(
                "INSERT INTO llm_usage (at, team, provider, model, request_type, latency_ms, status, error_type, overhead_us)
                 VALUES (?1, 't', 'p', ?2, 'chat', ?3, ?4, ?5, ?6)",
            )
            .bind(at)
            .bind(model)
            .bind(latency)
            .bind(if error.is_some() { 429 } else { 200 })
            .bind(error)
            .bind(added)
            .execute(&pool)
            .await
            .unwrap();
        }
        let health = model_health(&pool, 1_000).await.unwrap();
        assert_eq!(
            health,
            vec![
                ModelHealth {
                    model: "m1".into(),
                    calls: 100,
                    p50_ms: Some(50),
                    p95_ms: Some(95),
                    added_p95_ms: Some(1.0),
                    errors: vec![("rate_limited".into(), 5), ("upstream_5xx".into(), 2)],
                },
                ModelHealth {
                    model: "m2".into(),
                    calls: 1,
                    p50_ms: Some(3),
                    p95_ms: Some(3),
                    added_p95_ms: None,
                    errors: vec![("budget_exceeded".into(), 1)],
                },
            ]
        );
        assert!(model_health(&pool, 5_000).await.unwrap().is_empty());
    }
}
