//! Team LLM budgets in the UI: wire types, server functions and the Budget
//! page (`/teams/:name/budget`) with the editor and keys islands
//! (`board.rs`), plus the platform overview (`/llm`) with the price table.

pub mod board;

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde::{Deserialize, Serialize};

use crate::components::{format_time, Badge, Card, EmptyState, ErrorView, PageHeader, Tone};
use crate::error::AppError;

/// A budget and this period's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetInfo {
    /// The team.
    pub team: String,
    /// The workspace, for workspace budgets.
    pub workspace_id: Option<String>,
    /// `daily`, `weekly` or `monthly`.
    pub period: String,
    /// Limit per period (cents).
    pub limit_cents: i64,
    /// Soft alert threshold (%).
    pub soft_alert_percent: i64,
    /// `block` or `alert`.
    pub on_limit: String,
    /// Allowed models (empty: all priced).
    pub allowed_models: Vec<String>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// Version to send back with a change.
    pub version: i64,
    /// Who changed it last.
    pub updated_by: String,
    /// When (unix seconds).
    pub updated_at: i64,
    /// Spent this period (cents).
    pub spent_cents: i64,
    /// Held by requests in flight (cents).
    pub reserved_cents: i64,
    /// Spent this period, exactly (nanocents): what the page shows.
    pub spent_nanocents: i64,
    /// Held by requests in flight, exactly (nanocents).
    pub reserved_nanocents: i64,
    /// Left (cents).
    pub remaining_cents: i64,
    /// Period start (RFC 3339).
    pub period_start: String,
    /// Reset (RFC 3339).
    pub resets_at: String,
    /// Reset in the budget's time zone, for people.
    pub resets_at_local: String,
    /// Spend reached the soft threshold.
    pub soft_alert_crossed: bool,
}

/// Totals for one model, workspace or caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageLine {
    /// The model, workspace or caller.
    pub key: String,
    /// Requests.
    pub requests: i64,
    /// Failed or refused requests.
    pub errors: i64,
    /// Tokens in and out.
    pub tokens: i64,
    /// Cost in cents.
    pub cost_cents: f64,
}

/// One day of the period for the chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayPoint {
    /// `2026-11-27`.
    pub day: String,
    /// Spend that day (cents).
    pub cost_cents: f64,
}

/// One change in the budget's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryLine {
    /// Version.
    pub version: i64,
    /// Workspace, if any.
    pub workspace_id: Option<String>,
    /// Who.
    pub changed_by: String,
    /// When (unix seconds).
    pub changed_at: i64,
    /// What changed, in words.
    pub summary: String,
}

/// A gateway key as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyLine {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Bound workspace.
    pub workspace_id: Option<String>,
    /// First characters.
    pub prefix: String,
    /// Created by.
    pub created_by: String,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Last used (unix seconds).
    pub last_used_at: Option<i64>,
    /// Revoked (unix seconds).
    pub revoked_at: Option<i64>,
}

/// A circuit breaker's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircuitLine {
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// `closed`, `half_open` or `open`.
    pub state: String,
    /// Consecutive failures.
    pub failures: u32,
    /// Seconds until a probe.
    pub retry_in_secs: u64,
}

/// What the editor and the chart need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoardData {
    /// The team.
    pub team: String,
    /// The team budget, if set.
    pub budget: Option<BudgetInfo>,
    /// Each day of the period.
    pub days: Vec<DayPoint>,
    /// Index of today in `days`.
    pub today: usize,
    /// Linear projection of spend at the period's end (cents).
    pub projected_cents: f64,
    /// The caller may change the budget.
    pub can_edit: bool,
    /// Models a budget may allow.
    pub priced_models: Vec<String>,
}

/// Everything on the Budget page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetPageData {
    /// Chart and editor.
    pub board: BoardData,
    /// Workspace budgets.
    pub workspaces: Vec<BudgetInfo>,
    /// Spend by model this period.
    pub by_model: Vec<UsageLine>,
    /// Spend by workspace this period.
    pub by_workspace: Vec<UsageLine>,
    /// Top callers (gateway keys) this period.
    pub callers: Vec<UsageLine>,
    /// Budget changes.
    pub history: Vec<HistoryLine>,
    /// The team's gateway keys.
    pub keys: Vec<KeyLine>,
    /// Upstream circuit breakers.
    pub circuits: Vec<CircuitLine>,
    /// The caller may create and revoke keys.
    pub can_manage_keys: bool,
}

/// A budget change from the editor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetForm {
    /// `daily`, `weekly`, `monthly`.
    pub period: String,
    /// Limit in cents.
    pub limit_cents: i64,
    /// Soft alert %.
    pub soft_alert_percent: i64,
    /// `block` or `alert`.
    pub on_limit: String,
    /// Allowed models.
    pub allowed_models: Vec<String>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// The version the form showed (0 for a new budget).
    pub version: i64,
}

/// A key just created: shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewKey {
    /// Its listing.
    pub line: KeyLine,
    /// The key itself.
    pub key: String,
}

/// A price row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceLine {
    /// Provider.
    pub provider: String,
    /// Model.
    pub model: String,
    /// Dollars per million input tokens.
    pub input_usd: String,
    /// Dollars per million output tokens.
    pub output_usd: String,
    /// Who set it.
    pub updated_by: String,
    /// Offered by the gateway (configured upstream).
    pub routed: bool,
}

/// The platform overview for PMs and admins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OverviewData {
    /// Every budget.
    pub budgets: Vec<BudgetInfo>,
    /// Prices.
    pub prices: Vec<PriceLine>,
    /// Breakers.
    pub circuits: Vec<CircuitLine>,
    /// The caller may edit prices.
    pub can_edit_prices: bool,
}

/// `$12.34` from whole cents (limits); the same rule as [`dollars_f`].
pub fn dollars(cents: i64) -> String {
    dollars_f(cents as f64)
}

/// The one rule for every amount the pages show, so a headline and the
/// tables beside it agree: whole cents from a dollar up (`$12.35`), and
/// below a dollar four decimals when the amount has a fraction of a cent
/// (`$0.0052`; `<$0.0001` when smaller still), otherwise cents (`$0.50`).
pub fn dollars_f(cents: f64) -> String {
    let sign = if cents < 0.0 { "-" } else { "" };
    let c = cents.abs();
    let whole_cents = (c - c.round()).abs() < 1e-9;
    if c >= 100.0 || whole_cents {
        format!("{sign}${:.2}", c / 100.0)
    } else if c < 0.01 {
        format!("{sign}<$0.0001")
    } else {
        format!("{sign}${:.4}", c / 100.0)
    }
}

/// Cents (with fractions) from the ledger's exact nanocents.
pub fn cents_from_nanocents(nanocents: i64) -> f64 {
    nanocents as f64 / 1_000_000_000.0
}

/// "per month" etc.
pub fn per_period(period: &str) -> &'static str {
    match period {
        "daily" => "per day",
        "weekly" => "per week",
        _ => "per month",
    }
}

#[cfg(feature = "ssr")]
mod convert {
    use super::*;
    use paved_core::budgets::{self, keys::GatewayKeyInfo, usage::UsageGroup, BudgetView};

    pub fn info(v: BudgetView) -> BudgetInfo {
        BudgetInfo {
            team: v.team,
            workspace_id: v.workspace_id,
            period: v.period.as_str().into(),
            limit_cents: v.limit_cents,
            soft_alert_percent: v.soft_alert_percent,
            on_limit: v.on_limit.as_str().into(),
            allowed_models: v.allowed_models,
            rpm_limit: v.rpm_limit,
            tpm_limit: v.tpm_limit,
            version: v.version,
            updated_by: v.updated_by,
            updated_at: v.updated_at,
            spent_cents: v.spent_cents,
            reserved_cents: v.reserved_cents,
            spent_nanocents: v.spent_nanocents,
            reserved_nanocents: v.reserved_nanocents,
            remaining_cents: v.remaining_cents,
            period_start: v.period_start,
            resets_at: v.resets_at,
            resets_at_local: v.resets_at_local,
            soft_alert_crossed: v.soft_alert_crossed,
        }
    }

    pub fn usage(g: UsageGroup) -> UsageLine {
        UsageLine {
            key: g.key,
            requests: g.requests,
            errors: g.errors,
            tokens: g.input_tokens + g.output_tokens,
            cost_cents: g.cost_cents,
        }
    }

    pub fn key(k: GatewayKeyInfo) -> KeyLine {
        KeyLine {
            id: k.id,
            name: k.name,
            workspace_id: k.workspace_id,
            prefix: k.prefix,
            created_by: k.created_by,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }

    pub fn circuits(core: &paved_core::CoreState) -> Vec<CircuitLine> {
        core.gateway
            .breakers
            .list(std::time::Instant::now())
            .into_iter()
            .map(|c| CircuitLine {
                provider: c.provider,
                model: c.model,
                state: match c.state {
                    paved_core::gateway::breaker::CircuitState::Closed => "closed",
                    paved_core::gateway::breaker::CircuitState::HalfOpen => "half_open",
                    paved_core::gateway::breaker::CircuitState::Open => "open",
                }
                .into(),
                failures: c.consecutive_failures,
                retry_in_secs: c.retry_in_ms.div_ceil(1000),
            })
            .collect()
    }

    /// "limit $10.00 → $25.00, period monthly → weekly".
    pub fn summary(before: Option<&str>, after: &str) -> String {
        let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
        let after = parse(after);
        let Some(before) = before.map(parse) else {
            return format!(
                "set to {} {}",
                dollars(after["limit_cents"].as_i64().unwrap_or(0)),
                per_period(after["period"].as_str().unwrap_or("monthly"))
            );
        };
        let mut parts = Vec::new();
        let show = |field: &str, v: &serde_json::Value| -> String {
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
        for (field, label) in [
            ("limit_cents", "limit"),
            ("period", "period"),
            ("on_limit", "at the limit"),
            ("soft_alert_percent", "alert"),
            ("allowed_models", "models"),
            ("rpm_limit", "requests/min"),
            ("tpm_limit", "tokens/min"),
        ] {
            if before[field] != after[field] {
                parts.push(format!(
                    "{label} {} → {}",
                    show(field, &before[field]),
                    show(field, &after[field])
                ));
            }
        }
        if parts.is_empty() {
            "saved without changes".into()
        } else {
            parts.join(", ")
        }
    }

    pub fn usd(millicents_per_mtok: i64) -> String {
        let whole = millicents_per_mtok / 100_000;
        let frac = millicents_per_mtok % 100_000;
        // At least cents, more only when the price has them: 0.80, 0.075, 2.50.
        let mut s = format!("{whole}.{frac:05}");
        while s.ends_with('0') && s.split_once('.').is_some_and(|(_, d)| d.len() > 2) {
            s.pop();
        }
        s
    }

    pub use budgets::usage::GroupBy;

    /// Saves a budget from the editor through the same validation as the API
    /// (`version`, when given, makes the change conditional).
    pub async fn save(
        user: &paved_core::auth::Principal,
        team: &str,
        workspace: &str,
        form: BudgetForm,
        version: Option<i64>,
    ) -> Result<BudgetInfo, AppError> {
        let core = crate::ssr::core()?;
        let value = serde_json::json!({
            "period": form.period,
            "limit_cents": form.limit_cents,
            "soft_alert_percent": form.soft_alert_percent,
            "on_limit": form.on_limit,
            "allowed_models": form.allowed_models,
            "rpm_limit": form.rpm_limit,
            "tpm_limit": form.tpm_limit,
            "version": version,
        });
        let input = budgets::BudgetInput::from_json(&value)?;
        let view = budgets::set_budget(
            &core.db,
            &core.gateway.ledger,
            user,
            team,
            workspace,
            input,
            &core.gateway.priced_models(),
        )
        .await?;
        Ok(info(view))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn prices_show_at_least_cents() {
            assert_eq!(super::usd(80_000), "0.80");
            assert_eq!(super::usd(7_500), "0.075");
            assert_eq!(super::usd(250_000), "2.50");
            assert_eq!(super::usd(1_500_000), "15.00");
            assert_eq!(super::usd(1), "0.00001");
        }
    }
}

/// The Budget page's data. Members of the team, platform PMs and admins.
#[server(endpoint = "budget_page")]
pub async fn budget_page(team: String) -> Result<BudgetPageData, AppError> {
    use paved_core::auth::{authorize, Action};
    use paved_core::budgets::{self, keys, usage};
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    authorize(&user, Action::ViewTeam(&team))?;
    let gateway = &core.gateway;
    let ledger = &gateway.ledger;
    let tz = ledger.time_zone();
    let views = budgets::team_budgets(&core.db, ledger, &user, &team).await?;
    let mut team_budget = None;
    let mut workspaces = Vec::new();
    for v in views {
        if v.workspace_id.is_none() {
            team_budget = Some(convert::info(v));
        } else {
            workspaces.push(convert::info(v));
        }
    }
    let now = ledger.now_ms();
    let (start, end) = ledger.period_or_recent(&team, 29);
    let report = |by| usage::report(&core.db, tz, &user, &team, start, end, by);
    let daily = report(convert::GroupBy::Day).await?;
    let by_model = report(convert::GroupBy::Model).await?;
    let by_workspace = report(convert::GroupBy::Workspace).await?;
    let callers = report(convert::GroupBy::Caller).await?;
    let today = usage::local_day(now, tz);
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
    let today_index = days
        .iter()
        .position(|d| d.day == today)
        .unwrap_or(days.len().saturating_sub(1));
    // The headline's spend when there is a budget (the ledger's), else the chart's.
    let spent = team_budget.as_ref().map_or_else(
        || days.iter().map(|d| d.cost_cents).sum(),
        |b| cents_from_nanocents(b.spent_nanocents),
    );
    let projected_cents = projection(spent, now, start, end);
    let history = budgets::history(&core.db, &user, &team)
        .await?
        .into_iter()
        .map(|h| HistoryLine {
            summary: convert::summary(h.before.as_deref(), &h.after),
            version: h.version,
            workspace_id: h.workspace_id,
            changed_by: h.changed_by,
            changed_at: h.changed_at,
        })
        .collect();
    let keys = keys::list(&core.db, &user, &team)
        .await?
        .into_iter()
        .map(convert::key)
        .collect();
    let lead = authorize(&user, Action::LeadTeam(&team)).is_ok();
    Ok(BudgetPageData {
        board: BoardData {
            team: team.clone(),
            budget: team_budget,
            days,
            today: today_index,
            projected_cents,
            can_edit: lead,
            priced_models: gateway.priced_models(),
        },
        workspaces,
        by_model: by_model.into_iter().map(convert::usage).collect(),
        by_workspace: by_workspace.into_iter().map(convert::usage).collect(),
        callers: callers.into_iter().map(convert::usage).collect(),
        history,
        keys,
        circuits: convert::circuits(&core),
        can_manage_keys: lead,
    })
}

/// A straight line through this period so far, never below what is already
/// spent; at least an hour in, so one early call doesn't explode it.
pub fn projection(spent_cents: f64, now_ms: i64, start_ms: i64, end_ms: i64) -> f64 {
    let elapsed = (now_ms - start_ms).max(3_600_000) as f64;
    spent_cents * ((end_ms - start_ms) as f64 / elapsed).max(1.0)
}

/// Saves the team budget (leads and admins; the server decides).
#[server(endpoint = "budget_save", input = Json)]
pub async fn save_budget(team: String, form: BudgetForm) -> Result<BudgetInfo, AppError> {
    let user = crate::ssr::require_user()?;
    let version = form.version;
    convert::save(&user, &team, "", form, Some(version)).await
}

/// Sets a workspace budget inside the team (leads and admins); the team needs a budget first.
#[server(endpoint = "budget_workspace_save", input = Json)]
pub async fn save_workspace_budget(
    team: String,
    workspace: String,
    form: BudgetForm,
) -> Result<BudgetInfo, AppError> {
    let user = crate::ssr::require_user()?;
    let workspace = paved_core::budgets::validate_workspace(workspace.trim())?;
    convert::save(&user, &team, &workspace, form, None).await
}

/// Creates a gateway key (leads and admins); the key is returned this once.
#[server(endpoint = "gateway_key_create")]
pub async fn create_gateway_key(
    team: String,
    name: String,
    workspace_id: String,
) -> Result<NewKey, AppError> {
    use secrecy::ExposeSecret;
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let workspace = Some(workspace_id.trim()).filter(|w| !w.is_empty());
    let created =
        paved_core::budgets::keys::create(&core.db, &user, &team, &name, workspace).await?;
    Ok(NewKey {
        key: created.value.expose_secret().to_owned(),
        line: convert::key(created.info),
    })
}

/// Revokes a gateway key (leads and admins).
#[server(endpoint = "gateway_key_revoke")]
pub async fn revoke_gateway_key(team: String, id: i64) -> Result<i64, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    paved_core::budgets::keys::revoke(&core.db, &core.gateway.keys, &user, &team, id).await?;
    Ok(id)
}

/// Every team's budget, prices and breakers (platform PMs and admins).
#[server(endpoint = "llm_overview")]
pub async fn llm_overview() -> Result<OverviewData, AppError> {
    use paved_core::auth::{authorize, Action};
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    authorize(&user, Action::ViewPlatformInsights)?;
    let gateway = &core.gateway;
    let rules = paved_core::budgets::load_rules(&core.db)
        .await
        .map_err(paved_core::CoreError::from)?;
    let mut budgets: Vec<BudgetInfo> = rules
        .into_iter()
        .map(|r| convert::info(paved_core::budgets::BudgetView::new(r, &gateway.ledger)))
        .collect();
    budgets.sort_by(|a, b| (&a.team, &a.workspace_id).cmp(&(&b.team, &b.workspace_id)));
    let routed: Vec<(String, String)> = gateway
        .routes()
        .map(|r| (r.provider.clone(), r.model.clone()))
        .collect();
    let mut prices: Vec<PriceLine> = paved_core::budgets::prices::list_all(&core.db)
        .await?
        .into_iter()
        .map(|p| PriceLine {
            routed: routed.contains(&(p.provider.clone(), p.model.clone())),
            input_usd: convert::usd(p.input_millicents_per_mtok),
            output_usd: convert::usd(p.output_millicents_per_mtok),
            provider: p.provider,
            model: p.model,
            updated_by: p.updated_by,
        })
        .collect();
    // The models the gateway offers first.
    prices.sort_by(|a, b| {
        (!a.routed, &a.provider, &a.model).cmp(&(!b.routed, &b.provider, &b.model))
    });
    Ok(OverviewData {
        budgets,
        prices,
        circuits: convert::circuits(&core),
        can_edit_prices: authorize(&user, Action::AdministerPlatform).is_ok(),
    })
}

/// Sets a price (platform admins).
#[server(endpoint = "llm_price_save")]
pub async fn save_price(
    provider: String,
    model: String,
    input_usd: String,
    output_usd: String,
) -> Result<PriceLine, AppError> {
    let user = crate::ssr::require_user()?;
    let core = crate::ssr::core()?;
    let row = paved_core::budgets::prices::set_price(
        &core.db,
        &core.gateway.prices,
        &user,
        &provider,
        &model,
        &input_usd,
        &output_usd,
    )
    .await?;
    let routed = core
        .gateway
        .routes()
        .any(|r| r.provider == row.provider && r.model == row.model);
    Ok(PriceLine {
        input_usd: convert::usd(row.input_millicents_per_mtok),
        output_usd: convert::usd(row.output_millicents_per_mtok),
        provider: row.provider,
        model: row.model,
        updated_by: row.updated_by,
        routed,
    })
}

impl BudgetInfo {
    /// Spend as a percentage of the limit, at most 100 (100 for a zero limit).
    pub fn used_percent(&self) -> i64 {
        if self.limit_cents > 0 {
            (self.spent_cents * 100 / self.limit_cents).min(100)
        } else {
            100
        }
    }

    /// The fill colour of the usage bar: red at the limit, amber past the soft alert.
    pub fn bar_colour(&self) -> &'static str {
        let pct = self.used_percent();
        if pct >= 100 {
            "bg-red-500"
        } else if pct >= self.soft_alert_percent {
            "bg-amber-500"
        } else {
            "bg-indigo-500"
        }
    }
}

fn usage_table(
    title: &'static str,
    what: &'static str,
    lines: Vec<UsageLine>,
    testid: &'static str,
) -> impl IntoView {
    view! {
        <Card title=title>
            {if lines.is_empty() {
                view! { <p class="text-sm text-slate-500">"No gateway calls this period yet."</p> }.into_any()
            } else {
                view! {
                    <div class="overflow-x-auto">
                        <table class="table" data-testid=testid>
                            <thead><tr><th scope="col">{what}</th><th scope="col" class="text-right">"Requests"</th><th scope="col" class="text-right">"Errors"</th><th scope="col" class="text-right">"Tokens"</th><th scope="col" class="text-right">"Cost"</th></tr></thead>
                            <tbody>
                                {lines.into_iter().map(|l| view! {
                                    <tr>
                                        <td class="font-medium">{if l.key.is_empty() { "(none)".to_owned() } else { l.key }}</td>
                                        <td class="text-right tabular-nums">{l.requests}</td>
                                        <td class="text-right tabular-nums">{l.errors}</td>
                                        <td class="text-right tabular-nums">{l.tokens}</td>
                                        <td class="text-right tabular-nums">{dollars_f(l.cost_cents)}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
        </Card>
    }
}

fn circuit_table(circuits: Vec<CircuitLine>) -> impl IntoView {
    view! {
        <Card title="Upstream health">
            {if circuits.is_empty() {
                view! { <p class="text-sm text-slate-500" data-testid="circuits-empty">"Every provider is answering: no circuit breaker has tripped."</p> }.into_any()
            } else {
                view! {
                    <ul class="space-y-1 text-sm" data-testid="circuits">
                        {circuits.into_iter().map(|c| {
                            let (tone, label) = match c.state.as_str() {
                                "open" => (Tone::Danger, format!("open · probe in {} s", c.retry_in_secs)),
                                "half_open" => (Tone::Warning, "half-open · probing".to_owned()),
                                _ => (Tone::Success, "closed".to_owned()),
                            };
                            view! { <li class="flex items-center justify-between gap-2"><span>{format!("{} / {}", c.provider, c.model)}</span><Badge tone>{label}</Badge></li> }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </Card>
    }
}

/// `/teams/:name/budget`.
#[component]
pub fn BudgetPage() -> impl IntoView {
    let params = use_params_map();
    let name = move || params.with(|p| p.get("name").unwrap_or_default());
    let data = Resource::new(name, budget_page);
    view! {
        <Title text=move || format!("LLM budget · {}", name()) />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading the budget…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(d) => {
                        let team = d.board.team.clone();
                        let csv = format!("/api/budgets/v1/teams/{team}/usage.csv");
                        let back = format!("/teams/{team}");
                        let banner = d.board.budget.as_ref().filter(|b| b.soft_alert_crossed).map(|b| {
                            let over = b.on_limit == "block" && b.remaining_cents == 0;
                            view! {
                                <div role="alert" data-testid="budget-alert" class="mb-4 rounded-lg border border-amber-300 bg-amber-50 px-4 py-3 text-sm text-amber-900 dark:border-amber-700 dark:bg-amber-950 dark:text-amber-100">
                                    {if over {
                                        format!("The budget is used up: new LLM requests are refused until it resets on {}.", b.resets_at_local)
                                    } else {
                                        format!("Spend has reached {}% of the budget ({} of {} {}).", b.soft_alert_percent, dollars_f(cents_from_nanocents(b.spent_nanocents)), dollars(b.limit_cents), per_period(&b.period))
                                    }}
                                </div>
                            }
                        });
                        view! {
                            <PageHeader title=format!("LLM budget · team {team}") subtitle="What the team spends through the platform LLM gateway, and the limit that keeps it in check.">
                                <a href=back class="btn-secondary">"Team page"</a>
                                <a href=csv class="btn-secondary" download="">"Export CSV"</a>
                            </PageHeader>
                            {banner}
                            <board::BudgetBoard data=d.board.clone() />
                            <div class="mt-6 grid gap-4 md:grid-cols-2">
                                {usage_table("By model", "Model", d.by_model, "by-model")}
                                {usage_table("Top callers", "Gateway key", d.callers, "callers")}
                                {usage_table("By workspace", "Workspace", d.by_workspace, "by-workspace")}
                                {circuit_table(d.circuits)}
                            </div>
                            <div class="mt-6">
                                <board::WorkspaceBudgets team=team.clone() workspaces=d.workspaces can_edit=d.board.can_edit has_team_budget=d.board.budget.is_some() />
                            </div>
                            <div class="mt-6">
                                <board::GatewayKeys team=team.clone() keys=d.keys can_manage=d.can_manage_keys />
                            </div>
                            <Card title="Changes" class="mt-6">
                                {if d.history.is_empty() {
                                    view! { <EmptyState title="No changes yet" body="Every change to the budget is listed here with who made it." /> }.into_any()
                                } else {
                                    view! {
                                        <ol class="space-y-2 text-sm" data-testid="budget-history">
                                            {d.history.into_iter().map(|h| view! {
                                                <li><span class="font-medium">{format!("v{}", h.version)}</span>" · "{h.summary}" · "<span class="text-slate-500">{format!("{} · {}", h.changed_by, format_time(h.changed_at))}</span></li>
                                            }).collect_view()}
                                        </ol>
                                    }.into_any()
                                }}
                            </Card>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// `/llm`: every team's budget, the price table and upstream health (PMs and admins).
#[component]
pub fn LlmOverviewPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| llm_overview());
    view! {
        <Title text="LLM gateway" />
        <Suspense fallback=|| view! { <p class="text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <ErrorView error=e /> }.into_any(),
                    Ok(d) => view! {
                        <PageHeader title="LLM gateway" subtitle="Every team's budget this period, the prices the gateway bills at, and upstream health." >
                            <a href="/api/budgets/v1/usage.csv" class="btn-secondary" download="">"Export all usage (CSV)"</a>
                        </PageHeader>
                        <Card title="Team budgets">
                            {if d.budgets.is_empty() {
                                view! { <EmptyState title="No budgets yet" body="Team leads set one on their team's Budget page; until then the gateway refuses that team's calls." /> }.into_any()
                            } else {
                                view! {
                                    <div class="overflow-x-auto">
                                        <table class="table" data-testid="all-budgets">
                                            <thead><tr><th scope="col">"Team"</th><th scope="col">"Limit"</th><th scope="col" class="text-right">"Spent"</th><th scope="col">"Used"</th><th scope="col">"At the limit"</th></tr></thead>
                                            <tbody>
                                                {d.budgets.into_iter().map(|b| {
                                                    let pct = b.used_percent();
                                                    let fill = format!("h-2 rounded {}", b.bar_colour());
                                                    let href = format!("/teams/{}/budget", b.team);
                                                    let label = match &b.workspace_id { Some(w) => format!("{} / {w}", b.team), None => b.team.clone() };
                                                    view! {
                                                        <tr>
                                                            <td><a class="font-medium text-indigo-700 hover:underline dark:text-indigo-300" href=href>{label}</a></td>
                                                            <td>{format!("{} {}", dollars(b.limit_cents), per_period(&b.period))}</td>
                                                            <td class="text-right tabular-nums">{dollars_f(cents_from_nanocents(b.spent_nanocents))}</td>
                                                            <td class="min-w-32"><div class="h-2 rounded bg-slate-200 dark:bg-slate-800" role="progressbar" aria-valuenow=pct aria-valuemin="0" aria-valuemax="100" aria-label=format!("{pct}% used")><div class=fill style=format!("width: {pct}%")></div></div></td>
                                                            <td>{if b.on_limit == "block" { "blocks" } else { "alerts" }}</td>
                                                        </tr>
                                                    }
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    </div>
                                }.into_any()
                            }}
                        </Card>
                        <div class="mt-6 grid gap-4 md:grid-cols-3">
                            <div class="md:col-span-2"><board::PriceTable prices=d.prices can_edit=d.can_edit_prices /></div>
                            {circuit_table(d.circuits)}
                        </div>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[cfg(test)]
mod amount_tests {
    use super::*;

    #[test]
    fn every_amount_follows_one_rule() {
        assert_eq!(dollars(25_000), "$250.00");
        assert_eq!(dollars(50), "$0.50");
        assert_eq!(dollars(0), "$0.00");
        assert_eq!(dollars_f(1234.567), "$12.35");
        assert_eq!(dollars_f(0.52), "$0.0052");
        assert_eq!(dollars_f(0.01), "$0.0001");
        assert_eq!(dollars_f(0.004), "<$0.0001");
        assert_eq!(dollars_f(-0.52), "-$0.0052");
        // The headline (exact nanocents) and a table row (float cents) of one call agree.
        assert_eq!(
            dollars_f(cents_from_nanocents(10_000_000)),
            dollars_f(0.01),
            "a hundredth of a cent is not shown as a cent"
        );
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
