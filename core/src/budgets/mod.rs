//! Team LLM budgets: the rules team leads set (versioned and audited), the
//! two-phase [`ledger`] the gateway spends through, prices, gateway keys and
//! usage reports. Periods follow the calendar in a configured time zone
//! ([`period`]); money is exact integers ([`money`]).

pub mod gateway_page;
pub mod keys;
pub mod ledger;
pub mod money;
pub mod page;
pub mod period;
pub mod prices;
pub mod usage;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::SqlitePool;

use crate::auth::{authorize, Action, Principal};
use crate::{audit, CoreError};
use ledger::Ledger;
use money::{cents_ceil, NANOCENTS_PER_CENT};
pub use paved_shared::budgets::{BudgetChange, BudgetView, OnLimit, MAX_LIMIT_CENTS};
use period::Period;

/// The budgets feature's state, loaded once: the ledger, prices and gateway
/// keys. The gateway checks and charges them; budget pages and APIs read and
/// change them here.
pub struct Budgets {
    /// The two-phase ledger of every team's and workspace's spend.
    pub ledger: Ledger,
    /// Prices per provider and model, in memory.
    pub prices: prices::PriceBook,
    /// Gateway keys in memory.
    pub keys: keys::KeyCache,
}

/// Why the budgets could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BudgetsStartError {
    /// SQLite failed.
    #[error("cannot load the budget ledger: {0}")]
    Database(#[from] sqlx::Error),
    /// Prices could not be seeded.
    #[error("cannot seed prices: {0}")]
    Prices(#[from] CoreError),
    /// `PAVED_BUDGET_TIMEZONE` names no time zone.
    #[error("{0}")]
    TimeZone(String),
}

impl Budgets {
    /// Seeds prices on first start, loads them and the ledger (holds left by
    /// a crash are released by `reservation_ttl`), on `clock`'s time in the
    /// configured time zone.
    pub async fn start(
        pool: &SqlitePool,
        config: &crate::config::Config,
        clock: std::sync::Arc<dyn ledger::Clock>,
    ) -> Result<std::sync::Arc<Self>, BudgetsStartError> {
        prices::seed_if_empty(pool).await?;
        let book = prices::PriceBook::default();
        book.reload(pool).await?;
        let tz = period::time_zone(&config.llm.time_zone).map_err(BudgetsStartError::TimeZone)?;
        let ledger = Ledger::start(pool.clone(), tz, config.llm.reservation_ttl, clock).await?;
        Ok(std::sync::Arc::new(Self {
            ledger,
            prices: book,
            keys: keys::KeyCache::default(),
        }))
    }
}

/// Revokes a gateway key (leads and admins): refused by this replica at once
/// and by the others as soon as they hear of it.
pub async fn revoke_key(
    core: &crate::CoreState,
    caller: &Principal,
    team: &str,
    id: i64,
) -> Result<(), CoreError> {
    let hash = keys::revoke(&core.db, &core.budgets.keys, caller, team, id).await?;
    crate::changes::publish(core, crate::changes::Change::GatewayKey { hash }).await;
    Ok(())
}

/// Sets a price (platform admins), in force on every replica.
pub async fn set_price(
    core: &crate::CoreState,
    caller: &Principal,
    provider: &str,
    model: &str,
    input_usd_per_mtok: &str,
    output_usd_per_mtok: &str,
) -> Result<prices::PriceRow, CoreError> {
    let row = prices::set_price(
        &core.db,
        &core.budgets.prices,
        caller,
        provider,
        model,
        input_usd_per_mtok,
        output_usd_per_mtok,
    )
    .await?;
    crate::changes::publish(core, crate::changes::Change::Prices).await;
    Ok(row)
}

/// Removes a price (platform admins) on every replica: the gateway then
/// refuses that model.
pub async fn remove_price(
    core: &crate::CoreState,
    caller: &Principal,
    provider: &str,
    model: &str,
) -> Result<(), CoreError> {
    prices::remove_price(&core.db, &core.budgets.prices, caller, provider, model).await?;
    crate::changes::publish(core, crate::changes::Change::Prices).await;
    Ok(())
}

/// How long an idempotency key's first response is kept and replayed (published in the docs).
pub const IDEMPOTENCY_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// A budget as stored: for a team, or for one workspace inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetRule {
    /// The team.
    pub team: String,
    /// The workspace, `None` for the team-wide budget.
    pub workspace_id: Option<String>,
    /// Daily, weekly or monthly.
    pub period: Period,
    /// The limit per period in cents.
    pub limit_cents: i64,
    /// Spend (in % of the limit) that raises the soft alert.
    pub soft_alert_percent: i64,
    /// Block or only alert at the limit.
    pub on_limit: OnLimit,
    /// Models this budget may pay for; empty allows every priced model.
    pub allowed_models: Vec<String>,
    /// Requests per minute, if limited.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute, if limited.
    pub tpm_limit: Option<i64>,
    /// Increases with every change.
    pub version: i64,
    /// Audit actor of the last change.
    pub updated_by: String,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// A validated budget change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetInput {
    /// Daily, weekly or monthly.
    pub period: Period,
    /// The limit per period in cents.
    pub limit_cents: i64,
    /// Soft alert threshold, 1–100 %.
    pub soft_alert_percent: i64,
    /// Block or alert.
    pub on_limit: OnLimit,
    /// Allowed models (empty: all priced models).
    pub allowed_models: Vec<String>,
    /// Requests per minute.
    pub rpm_limit: Option<i64>,
    /// Tokens per minute.
    pub tpm_limit: Option<i64>,
    /// When given, the change applies only if the stored version is this one (else 409).
    pub expected_version: Option<i64>,
}

impl BudgetInput {
    /// Reads `{"period", "limit_cents", "soft_alert_percent", "on_limit",
    /// "allowed_models", "rpm_limit", "tpm_limit", "version"?}`, naming every
    /// field that is wrong. Omitted optional fields take defaults (80 %, block,
    /// all models, no rate limits).
    pub fn from_json(value: &Value) -> Result<Self, CoreError> {
        let mut problems: Vec<(String, String)> = Vec::new();
        let Some(object) = value.as_object() else {
            return Err(CoreError::Invalid {
                field: "body",
                message: "must be a JSON object with period and limit_cents".into(),
            });
        };
        let mut problem = |field: &str, message: &str| {
            problems.push((field.to_owned(), message.to_owned()));
        };
        let period = match object.get("period").and_then(Value::as_str) {
            Some(raw) => Period::parse(raw).unwrap_or_else(|| {
                problem("period", "must be daily, weekly or monthly");
                Period::Monthly
            }),
            None => {
                problem("period", "is required: daily, weekly or monthly");
                Period::Monthly
            }
        };
        let int = |name: &str| -> Result<Option<i64>, ()> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
                Some(_) => Err(()),
            }
        };
        let limit_cents = match int("limit_cents") {
            Ok(Some(v)) if (0..=MAX_LIMIT_CENTS).contains(&v) => v,
            Ok(None) => {
                problem("limit_cents", "is required: the limit per period in cents");
                0
            }
            _ => {
                problem(
                    "limit_cents",
                    "must be a whole number of cents from 0 to 1000000000",
                );
                0
            }
        };
        let soft_alert_percent = match int("soft_alert_percent") {
            Ok(None) => 80,
            Ok(Some(v)) if (1..=100).contains(&v) => v,
            _ => {
                problem(
                    "soft_alert_percent",
                    "must be a whole percentage from 1 to 100",
                );
                80
            }
        };
        let on_limit = match object.get("on_limit") {
            None | Some(Value::Null) => OnLimit::Block,
            Some(Value::String(s)) if s == "block" => OnLimit::Block,
            Some(Value::String(s)) if s == "alert" => OnLimit::Alert,
            Some(_) => {
                problem("on_limit", "must be block or alert");
                OnLimit::Block
            }
        };
        let mut allowed_models = Vec::new();
        match object.get("allowed_models") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for item in items {
                    match item.as_str().map(str::trim) {
                        Some(m) if !m.is_empty() && m.len() <= 200 => {
                            if !allowed_models.iter().any(|x| x == m) {
                                allowed_models.push(m.to_owned());
                            }
                        }
                        _ => problem("allowed_models", "must be a list of model names"),
                    }
                }
            }
            Some(_) => problem("allowed_models", "must be a list of model names"),
        }
        let mut per_minute = |name: &str| match int(name) {
            Ok(None) => None,
            Ok(Some(v)) if v > 0 => Some(v),
            _ => {
                problem(
                    name,
                    "must be a positive whole number, or null for no limit",
                );
                None
            }
        };
        let rpm_limit = per_minute("rpm_limit");
        let tpm_limit = per_minute("tpm_limit");
        let expected_version = match int("version") {
            Ok(v) => v,
            Err(()) => {
                problems.push((
                    "version".into(),
                    "must be the version number you last read".into(),
                ));
                None
            }
        };
        if !problems.is_empty() {
            return Err(CoreError::InvalidFields(problems));
        }
        Ok(Self {
            period,
            limit_cents,
            soft_alert_percent,
            on_limit,
            allowed_models,
            rpm_limit,
            tpm_limit,
            expected_version,
        })
    }
}

/// Combines a rule with the ledger's figures.
pub fn view(rule: BudgetRule, ledger: &Ledger) -> BudgetView {
    let ws = rule.workspace_id.clone().unwrap_or_default();
    let figures = ledger.figures(&rule.team, &ws);
    let (spent, reserved, start, end) = figures
        .map(|f| {
            (
                f.spent_nanocents,
                f.reserved_nanocents,
                f.period_start_ms,
                f.period_end_ms,
            )
        })
        .unwrap_or((0, 0, 0, 0));
    let limit = rule.limit_cents.saturating_mul(NANOCENTS_PER_CENT);
    let tz = ledger.time_zone();
    BudgetView {
        spent_cents: cents_ceil(spent),
        reserved_cents: cents_ceil(reserved),
        spent_nanocents: spent,
        reserved_nanocents: reserved,
        remaining_cents: (limit - spent - reserved).max(0) / NANOCENTS_PER_CENT,
        period_start: ledger::rfc3339(start, tz),
        resets_at: ledger::rfc3339(end, tz),
        resets_at_local: ledger::local_label(end, tz),
        soft_alert_crossed: spent >= limit / 100 * rule.soft_alert_percent,
        team: rule.team,
        workspace_id: rule.workspace_id,
        period: rule.period,
        limit_cents: rule.limit_cents,
        soft_alert_percent: rule.soft_alert_percent,
        on_limit: rule.on_limit,
        allowed_models: rule.allowed_models,
        rpm_limit: rule.rpm_limit,
        tpm_limit: rule.tpm_limit,
        version: rule.version,
        updated_by: rule.updated_by,
        updated_at: rule.updated_at,
    }
}

/// One change in a budget's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetVersion {
    /// The version this change produced.
    pub version: i64,
    /// The workspace, if a workspace budget.
    pub workspace_id: Option<String>,
    /// Who.
    pub changed_by: String,
    /// When (unix seconds).
    pub changed_at: i64,
    /// The budget before (JSON), if any.
    pub before: Option<String>,
    /// The budget after (JSON).
    pub after: String,
}

use paved_store::budgets::RuleRow;
use paved_store::Db;

/// A stored budget as the ledger uses it.
fn into_rule(row: RuleRow) -> BudgetRule {
    BudgetRule {
        team: row.team,
        workspace_id: Some(row.workspace_id).filter(|w| !w.is_empty()),
        period: Period::parse(&row.period).unwrap_or(Period::Monthly),
        limit_cents: row.limit_cents,
        soft_alert_percent: row.soft_alert_percent,
        on_limit: if row.on_limit == "alert" {
            OnLimit::Alert
        } else {
            OnLimit::Block
        },
        allowed_models: serde_json::from_str(&row.allowed_models).unwrap_or_default(),
        rpm_limit: row.rpm_limit,
        tpm_limit: row.tpm_limit,
        version: row.version,
        updated_by: row.updated_by,
        updated_at: row.updated_at,
    }
}

/// Every budget (the ledger loads them at start).
pub async fn load_rules(db: impl Into<Db<'_>>) -> Result<Vec<BudgetRule>, sqlx::Error> {
    let rows = paved_store::budgets::all(db.into()).await?;
    Ok(rows.into_iter().map(into_rule).collect())
}

async fn find_rule(
    db: Db<'_>,
    team: &str,
    workspace: &str,
) -> Result<Option<BudgetRule>, CoreError> {
    Ok(paved_store::budgets::find(db, team, workspace)
        .await?
        .map(into_rule))
}

/// Checks a workspace id: 1–63 of `[a-z0-9-_.]`.
pub fn validate_workspace(raw: &str) -> Result<String, CoreError> {
    let ok = !raw.is_empty()
        && raw.len() <= 63
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(CoreError::Invalid {
            field: "workspace_id",
            message: "must be 1–63 lowercase letters, digits, '-', '_' or '.'".into(),
        })
    }
}

/// 404 unless `team` exists.
pub(crate) async fn require_team(db: impl Into<Db<'_>>, team: &str) -> Result<(), CoreError> {
    if paved_store::teams::find(db.into(), team).await?.is_some() {
        Ok(())
    } else {
        Err(CoreError::NotFound(format!("team {team}")))
    }
}

/// The team's budget and its workspaces' budgets with this period's figures.
/// Members, platform PMs and admins may read.
pub async fn team_budgets(
    db: impl Into<Db<'_>>,
    ledger: &Ledger,
    caller: &Principal,
    team: &str,
) -> Result<Vec<BudgetView>, CoreError> {
    let db = db.into();
    authorize(caller, Action::ViewTeam(team))?;
    require_team(db, team).await?;
    let rows = paved_store::budgets::of_team(db, team).await?;
    Ok(rows
        .into_iter()
        .map(|r| view(into_rule(r), ledger))
        .collect())
}

/// One budget (team-wide when `workspace` is `""`) with its figures.
pub async fn budget(
    db: impl Into<Db<'_>>,
    ledger: &Ledger,
    caller: &Principal,
    team: &str,
    workspace: &str,
) -> Result<BudgetView, CoreError> {
    let db = db.into();
    authorize(caller, Action::ViewTeam(team))?;
    require_team(db, team).await?;
    let rule = find_rule(db, team, workspace).await?.ok_or_else(|| {
        CoreError::NotFound(if workspace.is_empty() {
            format!("a budget for team {team} (a team lead sets one)")
        } else {
            format!("a budget for workspace {workspace} of team {team}")
        })
    })?;
    Ok(view(rule, ledger))
}

/// Sets a budget. Team leads (and platform admins) only; models must be
/// priced; every change is versioned and audited in one transaction, then
/// applied to the ledger.
pub async fn set_budget(
    db: impl Into<Db<'_>>,
    ledger: &Ledger,
    caller: &Principal,
    team: &str,
    workspace: &str,
    input: BudgetInput,
    priced_models: &[String],
) -> Result<BudgetView, CoreError> {
    let db = db.into();
    authorize(caller, Action::LeadTeam(team))?;
    require_team(db, team).await?;
    if !workspace.is_empty() {
        validate_workspace(workspace)?;
        if find_rule(db, team, "").await?.is_none() {
            return Err(CoreError::Invalid {
                field: "workspace_id",
                message: format!("team {team} needs a team budget before a workspace budget"),
            });
        }
    }
    let unknown: Vec<&String> = input
        .allowed_models
        .iter()
        .filter(|m| !priced_models.contains(m))
        .collect();
    if !unknown.is_empty() {
        return Err(CoreError::InvalidFields(vec![(
            "allowed_models".into(),
            format!(
                "{} {} no price or no upstream; a platform admin adds them first",
                unknown
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                if unknown.len() == 1 { "has" } else { "have" }
            ),
        )]));
    }
    let actor = caller.actor();
    // The ledger's clock, so a budget's history orders with the usage it governs.
    let now = ledger.now_ms().div_euclid(1000);
    let mut tx = db.begin().await?;
    let before = paved_store::budgets::find_for_update(tx.conn(), team, workspace)
        .await?
        .map(into_rule);
    let current_version = before.as_ref().map_or(0, |b| b.version);
    if let Some(expected) = input.expected_version {
        if expected != current_version {
            return Err(CoreError::Conflict(format!(
                "the budget changed since you read it (now version {current_version}, you sent {expected}); reload and try again"
            )));
        }
    }
    let rule = BudgetRule {
        team: team.to_owned(),
        workspace_id: Some(workspace.to_owned()).filter(|w| !w.is_empty()),
        period: input.period,
        limit_cents: input.limit_cents,
        soft_alert_percent: input.soft_alert_percent,
        on_limit: input.on_limit,
        allowed_models: input.allowed_models,
        rpm_limit: input.rpm_limit,
        tpm_limit: input.tpm_limit,
        version: current_version + 1,
        updated_by: actor.clone(),
        updated_at: now,
    };
    let period = rule.period.as_str();
    let on_limit = rule.on_limit.as_str();
    let models = serde_json::to_string(&rule.allowed_models).unwrap_or_else(|_| "[]".into());
    paved_store::budgets::upsert(
        tx.conn(),
        &RuleRow {
            team: team.to_owned(),
            workspace_id: workspace.to_owned(),
            period: period.to_owned(),
            limit_cents: rule.limit_cents,
            soft_alert_percent: rule.soft_alert_percent,
            on_limit: on_limit.to_owned(),
            allowed_models: models,
            rpm_limit: rule.rpm_limit,
            tpm_limit: rule.tpm_limit,
            version: rule.version,
            updated_by: actor.clone(),
            updated_at: now,
        },
    )
    .await?;
    let before_json = before
        .as_ref()
        .map(|b| serde_json::to_value(b).unwrap_or_default());
    let after_json = serde_json::to_value(&rule).unwrap_or_default();
    let before_text = before_json.as_ref().map(Value::to_string);
    let after_text = after_json.to_string();
    paved_store::budgets::insert_version(
        tx.conn(),
        team,
        &paved_store::budgets::VersionRow {
            workspace_id: workspace.to_owned(),
            version: rule.version,
            changed_by: actor.clone(),
            changed_at: now,
            before_json: before_text,
            after_json: after_text,
        },
    )
    .await?;
    let target = if workspace.is_empty() {
        format!("team:{team}")
    } else {
        format!("team:{team}/workspace:{workspace}")
    };
    audit::record(
        tx.conn(),
        &actor,
        "budget.set",
        &target,
        before_json,
        Some(after_json),
    )
    .await?;
    tx.commit().await?;
    ledger.apply_rule(rule.clone());
    Ok(view(rule, ledger))
}

/// The team's budget history, newest first.
pub async fn history(
    db: impl Into<Db<'_>>,
    caller: &Principal,
    team: &str,
) -> Result<Vec<BudgetVersion>, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    let rows = paved_store::budgets::history(db.into(), team).await?;
    Ok(rows
        .into_iter()
        .map(|r| BudgetVersion {
            version: r.version,
            workspace_id: Some(r.workspace_id).filter(|w| !w.is_empty()),
            changed_by: r.changed_by,
            changed_at: r.changed_at,
            before: r.before_json,
            after: r.after_json,
        })
        .collect())
}

#[cfg(test)]
mod tests;

/// Demo data (`PAVED_DEMO=true`): budgets for the demo teams (first start
/// only) and five weeks of plausible gateway usage, re-placed at every start
/// so the Budget page's chart and breakdowns always have something to show.
///
/// Usage is placed relative to `now_ms` in the budget time zone `tz`: a full
/// day's worth on each of the 35 local days before today (so even the
/// last day of a month has history before it), and today a share
/// in proportion to how much of the day has passed (at least an hour's), at
/// instants between local midnight and `now_ms`. So whatever the date and
/// time (the 1st of a month just after midnight, a Monday, a daylight-saving
/// day), the current day, week and month all hold spend, the days before
/// them hold history, and a straight-line projection stays near a month's
/// normal spend. The demo's rows carry `reservation_id = 'demo-seed'`; real
/// gateway calls are never touched.
pub async fn seed_demo(
    pool: &SqlitePool,
    tz: &jiff::tz::TimeZone,
    now_ms: i64,
) -> Result<(), CoreError> {
    let calls = demo_calls(tz, now_ms)?;
    let now = now_ms.div_euclid(1000);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!("DELETE FROM llm_usage WHERE reservation_id = 'demo-seed'")
        .execute(&mut *tx)
        .await?;
    let first_start = sqlx::query_scalar!("SELECT COUNT(*) FROM llm_budgets")
        .fetch_one(&mut *tx)
        .await?
        == 0;
    for (team, limit_cents) in [("payments", 25_000_i64), ("search", 10_000)] {
        if first_start {
            seed_demo_budget(&mut tx, team, limit_cents, now).await?;
        }
        for call in &calls {
            let (model, input, output) = if call.slot == 2 {
                ("gpt-4o", 1_800 + call.day * 40, 600 + call.day * 9)
            } else {
                ("gpt-4o-mini", 2_400 + call.day * 55, 900 + call.day * 13)
            };
            // gpt-4o-mini $0.15/$0.60, gpt-4o $2.50/$10 per million tokens, scaled to a day's traffic.
            let (pin, pout) = if model == "gpt-4o" {
                (250_000, 1_000_000)
            } else {
                (15_000, 60_000)
            };
            let full_volume: i64 = if team == "payments" { 400 } else { 150 };
            // Today's calls carry the share of the day that has passed (in thousandths).
            let volume = (full_volume * call.share_permille).div_euclid(1000).max(1);
            let cost = (input * pin + output * pout) * volume;
            let workspace = if call.slot == 0 { "checkout" } else { "" };
            let caller = match (team, call.slot) {
                ("payments", 0) => "checkout-service",
                ("payments", _) => "payments-api",
                _ => "search-ranker",
            };
            // The product features callers name with X-Paved-Feature.
            let feature = match (team, call.slot) {
                ("payments", 0) => Some("checkout-assistant"),
                ("payments", 1) => Some("fraud-explanations"),
                ("payments", _) => None,
                _ => Some("query-rewrite"),
            };
            let tokens_in = input * volume;
            let tokens_out = output * volume;
            sqlx::query!(
                r#"INSERT INTO llm_usage (at, team, workspace_id, key_name, provider, model, request_type, input_tokens, output_tokens, cost_nanocents, latency_ms, status, reservation_id, feature)
                   VALUES (?1, ?2, ?3, ?4, 'openai', ?5, 'chat', ?6, ?7, ?8, 850, 200, 'demo-seed', ?9)"#,
                call.at_ms,
                team,
                workspace,
                caller,
                model,
                tokens_in,
                tokens_out,
                cost,
                feature
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A demo team's monthly budget, version 1.
async fn seed_demo_budget(
    tx: &mut sqlx::SqliteConnection,
    team: &str,
    limit_cents: i64,
    now: i64,
) -> Result<(), CoreError> {
    let rule = BudgetRule {
        team: team.into(),
        workspace_id: None,
        period: Period::Monthly,
        limit_cents,
        soft_alert_percent: 80,
        on_limit: OnLimit::Block,
        allowed_models: Vec::new(),
        rpm_limit: Some(600),
        tpm_limit: None,
        version: 1,
        updated_by: "demo".into(),
        updated_at: now,
    };
    let after = serde_json::to_string(&rule).unwrap_or_default();
    sqlx::query!(
        r#"INSERT INTO llm_budgets (team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at)
           VALUES (?1, '', 'monthly', ?2, 80, 'block', '[]', 600, NULL, 1, 'demo', ?3)"#,
        team,
        limit_cents,
        now
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO llm_budget_versions (team, workspace_id, version, changed_by, changed_at, before_json, after_json) VALUES (?1, '', 1, 'demo', ?2, NULL, ?3)",
        team,
        now,
        after
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One seeded call: when, which of the day's three calls, how many days
/// before today (0 = today), and what share of a full day's volume it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DemoCall {
    at_ms: i64,
    slot: i64,
    day: i64,
    share_permille: i64,
}

/// Days of history the demo seeds before today.
const DEMO_HISTORY_DAYS: i64 = 35;

/// Where the demo's calls fall: three on each of the [`DEMO_HISTORY_DAYS`]
/// local days before today (at 09:00, 13:00 and 16:00 after local midnight),
/// and three today, spread over the part of the day that has passed, none
/// after `now_ms`.
fn demo_calls(tz: &jiff::tz::TimeZone, now_ms: i64) -> Result<Vec<DemoCall>, CoreError> {
    let bad_clock = |e: jiff::Error| CoreError::Invalid {
        field: "clock",
        message: format!("the demo cannot place usage around this instant: {e}"),
    };
    let now = jiff::Timestamp::from_millisecond(now_ms).map_err(bad_clock)?;
    let today = now.to_zoned(tz.clone()).date();
    let day_start = |days_back: i64| -> Result<i64, CoreError> {
        let date = today
            .checked_sub(jiff::Span::new().days(days_back))
            .map_err(bad_clock)?;
        Ok(date
            .to_zoned(tz.clone())
            .map_err(bad_clock)?
            .timestamp()
            .as_millisecond())
    };
    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;
    let mut calls = Vec::with_capacity(3 * (DEMO_HISTORY_DAYS as usize + 1));
    for day in 1..=DEMO_HISTORY_DAYS {
        let start = day_start(day)?;
        for (slot, hour) in [(0, 9), (1, 13), (2, 16)] {
            calls.push(DemoCall {
                at_ms: start + hour * HOUR_MS,
                slot,
                day,
                share_permille: 1000,
            });
        }
    }
    let start = day_start(0)?;
    let elapsed = (now_ms - start).max(0);
    let share_permille = (elapsed.max(HOUR_MS) * 1000 / DAY_MS).min(1000);
    for slot in 0..3 {
        calls.push(DemoCall {
            at_ms: start + elapsed * (slot + 1) / 4,
            slot,
            day: 0,
            share_permille,
        });
    }
    Ok(calls)
}
