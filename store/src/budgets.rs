//! Budget rules and their history (what is spent and held is the ledger's).

use sqlx::Error;

use crate::{dual, dual_conn, Conn, Db};

/// A budget as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRow {
    /// The team.
    pub team: String,
    /// `""` for the team-wide budget.
    pub workspace_id: String,
    /// `daily`, `weekly` or `monthly`.
    pub period: String,
    /// The limit per period.
    pub limit_cents: i64,
    /// Spend (percent of the limit) that raises the soft alert.
    pub soft_alert_percent: i64,
    /// `block` or `alert`.
    pub on_limit: String,
    /// JSON array of model names; empty allows every priced model.
    pub allowed_models: String,
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

/// One change of a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    /// `""` for the team-wide budget.
    pub workspace_id: String,
    /// The version it made.
    pub version: i64,
    /// Who.
    pub changed_by: String,
    /// When (unix seconds).
    pub changed_at: i64,
    /// The budget before (JSON), if any.
    pub before_json: Option<String>,
    /// The budget after (JSON).
    pub after_json: String,
}

/// Every budget.
pub async fn all(db: Db<'_>) -> Result<Vec<RuleRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            RuleRow,
            "SELECT team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at FROM llm_budgets"
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            RuleRow,
            "SELECT team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at FROM llm_budgets -- postgres"
        )
        .fetch_all(pool)
        .await,
    )
}

/// A team's budget and its workspaces' budgets, team-wide first.
pub async fn of_team(db: Db<'_>, team: &str) -> Result<Vec<RuleRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            RuleRow,
            "SELECT team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at FROM llm_budgets WHERE team = ?1 ORDER BY workspace_id",
            team
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            RuleRow,
            r#"SELECT team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at FROM llm_budgets WHERE team = $1 ORDER BY workspace_id COLLATE "C""#,
            team
        )
        .fetch_all(pool)
        .await,
    )
}

/// One budget (`workspace` `""`: the team-wide one).
pub async fn find(db: Db<'_>, team: &str, workspace: &str) -> Result<Option<RuleRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            RuleRow,
            "SELECT team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at FROM llm_budgets WHERE team = ?1 AND workspace_id = ?2",
            team,
            workspace
        )
        .fetch_optional(pool)
        .await,
        postgres: sqlx::query_as!(
            RuleRow,
            "SELECT team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at FROM llm_budgets WHERE team = $1 AND workspace_id = $2",
            team,
            workspace
        )
        .fetch_optional(pool)
        .await,
    )
}

/// One budget inside a transaction that may change it (locked on
/// PostgreSQL; SQLite's transaction already holds the write lock).
pub async fn find_for_update(
    conn: Conn<'_>,
    team: &str,
    workspace: &str,
) -> Result<Option<RuleRow>, Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query_as!(
            RuleRow,
            "SELECT team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at FROM llm_budgets WHERE team = ?1 AND workspace_id = ?2",
            team,
            workspace
        )
        .fetch_optional(c)
        .await,
        postgres: sqlx::query_as!(
            RuleRow,
            "SELECT team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at FROM llm_budgets WHERE team = $1 AND workspace_id = $2 FOR UPDATE",
            team,
            workspace
        )
        .fetch_optional(c)
        .await,
    )
}

/// Writes a budget (inserted or replaced).
pub async fn upsert(conn: Conn<'_>, rule: &RuleRow) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            r#"INSERT INTO llm_budgets (team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at)
               VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
               ON CONFLICT (team, workspace_id) DO UPDATE SET period = excluded.period, limit_cents = excluded.limit_cents,
                 soft_alert_percent = excluded.soft_alert_percent, on_limit = excluded.on_limit, allowed_models = excluded.allowed_models,
                 rpm_limit = excluded.rpm_limit, tpm_limit = excluded.tpm_limit, version = excluded.version,
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at"#,
            rule.team,
            rule.workspace_id,
            rule.period,
            rule.limit_cents,
            rule.soft_alert_percent,
            rule.on_limit,
            rule.allowed_models,
            rule.rpm_limit,
            rule.tpm_limit,
            rule.version,
            rule.updated_by,
            rule.updated_at
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            r#"INSERT INTO llm_budgets (team, workspace_id, period, limit_cents, soft_alert_percent, on_limit, allowed_models, rpm_limit, tpm_limit, version, updated_by, updated_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
               ON CONFLICT (team, workspace_id) DO UPDATE SET period = excluded.period, limit_cents = excluded.limit_cents,
                 soft_alert_percent = excluded.soft_alert_percent, on_limit = excluded.on_limit, allowed_models = excluded.allowed_models,
                 rpm_limit = excluded.rpm_limit, tpm_limit = excluded.tpm_limit, version = excluded.version,
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at"#,
            rule.team,
            rule.workspace_id,
            rule.period,
            rule.limit_cents,
            rule.soft_alert_percent,
            rule.on_limit,
            rule.allowed_models,
            rule.rpm_limit,
            rule.tpm_limit,
            rule.version,
            rule.updated_by,
            rule.updated_at
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// Records one change of a budget.
pub async fn insert_version(conn: Conn<'_>, team: &str, change: &VersionRow) -> Result<(), Error> {
    dual_conn!(conn, |c|
        sqlite: sqlx::query!(
            "INSERT INTO llm_budget_versions (team, workspace_id, version, changed_by, changed_at, before_json, after_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            team,
            change.workspace_id,
            change.version,
            change.changed_by,
            change.changed_at,
            change.before_json,
            change.after_json
        )
        .execute(c)
        .await
        .map(drop),
        postgres: sqlx::query!(
            "INSERT INTO llm_budget_versions (team, workspace_id, version, changed_by, changed_at, before_json, after_json) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            team,
            change.workspace_id,
            change.version,
            change.changed_by,
            change.changed_at,
            change.before_json,
            change.after_json
        )
        .execute(c)
        .await
        .map(drop),
    )
}

/// The team's budget changes, newest first (at most 200).
pub async fn history(db: Db<'_>, team: &str) -> Result<Vec<VersionRow>, Error> {
    dual!(db, |pool|
        sqlite: sqlx::query_as!(
            VersionRow,
            "SELECT workspace_id, version, changed_by, changed_at, before_json, after_json FROM llm_budget_versions WHERE team = ?1 ORDER BY changed_at DESC, id DESC LIMIT 200",
            team
        )
        .fetch_all(pool)
        .await,
        postgres: sqlx::query_as!(
            VersionRow,
            "SELECT workspace_id, version, changed_by, changed_at, before_json, after_json FROM llm_budget_versions WHERE team = $1 ORDER BY changed_at DESC, id DESC LIMIT 200",
            team
        )
        .fetch_all(pool)
        .await,
    )
}
