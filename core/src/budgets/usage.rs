//! Usage reports over `llm_usage`: totals grouped by model, workspace, caller
//! (gateway key) or local day, and the CSV export for billing.

use jiff::tz::TimeZone;
use jiff::Timestamp;
pub use paved_shared::budgets::UsageGroup;
use serde::{Deserialize, Serialize};
use sqlx::SqlitePool;

use super::money::NANOCENTS_PER_CENT;
use crate::auth::{authorize, Action, Principal};
use crate::CoreError;

/// What to group usage by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// Per model.
    Model,
    /// Per workspace (`""` for none).
    Workspace,
    /// Per local day in the configured time zone (`2026-11-27`).
    Day,
    /// Per gateway key name: the top callers.
    Caller,
    /// Per product feature the caller named (`""` for none).
    Feature,
}

impl GroupBy {
    /// Parses `model`, `workspace`, `day` or `caller`.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "model" => Some(Self::Model),
            "workspace" => Some(Self::Workspace),
            "day" => Some(Self::Day),
            "caller" => Some(Self::Caller),
            "feature" => Some(Self::Feature),
            _ => None,
        }
    }
}

struct Row {
    key: String,
    requests: i64,
    errors: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost: i64,
}

fn group(row: Row) -> UsageGroup {
    UsageGroup {
        key: row.key,
        requests: row.requests,
        errors: row.errors,
        input_tokens: row.input_tokens,
        output_tokens: row.output_tokens,
        cost_nanocents: row.cost,
        cost_cents: row.cost as f64 / NANOCENTS_PER_CENT as f64,
    }
}

/// Usage of `team` in `[from_ms, to_ms)`, grouped; members, PMs and admins may read.
pub async fn report(
    pool: &SqlitePool,
    tz: &TimeZone,
    caller: &Principal,
    team: &str,
    from_ms: i64,
    to_ms: i64,
    by: GroupBy,
) -> Result<Vec<UsageGroup>, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    if to_ms <= from_ms {
        return Err(CoreError::Invalid {
            field: "to",
            message: "must be after from".into(),
        });
    }
    let rows = match by {
        GroupBy::Model => sqlx::query_as!(
            Row,
            r#"SELECT model AS key, COUNT(*) AS "requests!: i64", SUM(status >= 400) AS "errors!: i64",
                 SUM(input_tokens) AS "input_tokens!: i64", SUM(output_tokens) AS "output_tokens!: i64", SUM(cost_nanocents) AS "cost!: i64"
               FROM llm_usage WHERE team = ?1 AND at >= ?2 AND at < ?3 GROUP BY model ORDER BY 6 DESC, 1"#,
            team, from_ms, to_ms
        )
        .fetch_all(pool)
        .await?,
        GroupBy::Workspace => sqlx::query_as!(
            Row,
            r#"SELECT workspace_id AS key, COUNT(*) AS "requests!: i64", SUM(status >= 400) AS "errors!: i64",
                 SUM(input_tokens) AS "input_tokens!: i64", SUM(output_tokens) AS "output_tokens!: i64", SUM(cost_nanocents) AS "cost!: i64"
               FROM llm_usage WHERE team = ?1 AND at >= ?2 AND at < ?3 GROUP BY workspace_id ORDER BY 6 DESC, 1"#,
            team, from_ms, to_ms
        )
        .fetch_all(pool)
        .await?,
        GroupBy::Caller => sqlx::query_as!(
            Row,
            r#"SELECT COALESCE(key_name, '') AS "key!: String", COUNT(*) AS "requests!: i64", SUM(status >= 400) AS "errors!: i64",
                 SUM(input_tokens) AS "input_tokens!: i64", SUM(output_tokens) AS "output_tokens!: i64", SUM(cost_nanocents) AS "cost!: i64"
               FROM llm_usage WHERE team = ?1 AND at >= ?2 AND at < ?3 GROUP BY key_name ORDER BY 6 DESC, 1 LIMIT 20"#,
            team, from_ms, to_ms
        )
        .fetch_all(pool)
        .await?,
        GroupBy::Feature => sqlx::query_as!(
            Row,
            r#"SELECT COALESCE(feature, '') AS "key!: String", COUNT(*) AS "requests!: i64", SUM(status >= 400) AS "errors!: i64",
                 SUM(input_tokens) AS "input_tokens!: i64", SUM(output_tokens) AS "output_tokens!: i64", SUM(cost_nanocents) AS "cost!: i64"
               FROM llm_usage WHERE team = ?1 AND at >= ?2 AND at < ?3 GROUP BY feature ORDER BY 6 DESC, 1 LIMIT 50"#,
            team, from_ms, to_ms
        )
        .fetch_all(pool)
        .await?,
        GroupBy::Day => {
            let buckets = sqlx::query!(
                r#"SELECT (at / 900000) * 900000 AS "bucket!: i64", COUNT(*) AS "requests!: i64", SUM(status >= 400) AS "errors!: i64",
                     SUM(input_tokens) AS "input_tokens!: i64", SUM(output_tokens) AS "output_tokens!: i64", SUM(cost_nanocents) AS "cost!: i64"
                   FROM llm_usage WHERE team = ?1 AND at >= ?2 AND at < ?3 GROUP BY 1 ORDER BY 1"#,
                team, from_ms, to_ms
            )
            .fetch_all(pool)
            .await?;
            let mut days: Vec<Row> = Vec::new();
            for b in buckets {
                let day = local_day(b.bucket, tz);
                match days.last_mut() {
                    Some(last) if last.key == day => {
                        last.requests += b.requests;
                        last.errors += b.errors;
                        last.input_tokens += b.input_tokens;
                        last.output_tokens += b.output_tokens;
                        last.cost += b.cost;
                    }
                    _ => days.push(Row {
                        key: day,
                        requests: b.requests,
                        errors: b.errors,
                        input_tokens: b.input_tokens,
                        output_tokens: b.output_tokens,
                        cost: b.cost,
                    }),
                }
            }
            days
        }
    };
    Ok(rows.into_iter().map(group).collect())
}

/// Each feature's cost in cents on each of `days` (local calendar days in
/// `tz`, `2026-11-27`) over `[from_ms, to_ms)`, features by name (`""`:
/// calls that named none); members, PMs and admins may read.
pub async fn feature_days(
    pool: &SqlitePool,
    tz: &TimeZone,
    caller: &Principal,
    team: &str,
    (from_ms, to_ms): (i64, i64),
    days: &[String],
) -> Result<Vec<(String, Vec<f64>)>, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    let rows = sqlx::query!(
        r#"SELECT COALESCE(feature, '') AS "feature!: String", (at / 900000) * 900000 AS "bucket!: i64",
                  SUM(cost_nanocents) AS "cost!: i64"
           FROM llm_usage WHERE team = ?1 AND at >= ?2 AND at < ?3 GROUP BY 1, 2"#,
        team,
        from_ms,
        to_ms
    )
    .fetch_all(pool)
    .await?;
    let index: std::collections::HashMap<&str, usize> = days
        .iter()
        .enumerate()
        .map(|(i, d)| (d.as_str(), i))
        .collect();
    let mut out: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    for r in rows {
        if let Some(&i) = index.get(local_day(r.bucket, tz).as_str()) {
            out.entry(r.feature)
                .or_insert_with(|| vec![0.0; days.len()])[i] +=
                r.cost as f64 / NANOCENTS_PER_CENT as f64;
        }
    }
    Ok(out.into_iter().collect())
}

/// The local calendar day of `ms` in `tz` (`2026-11-27`).
pub fn local_day(ms: i64, tz: &TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).date().to_string())
        .unwrap_or_default()
}

/// One CSV cell, quoted when needed. A cell a spreadsheet would run as a
/// formula (starting `=`, `+`, `-`, `@`, tab or CR: key and workspace names
/// are chosen by users) is prefixed with `'` so it stays text. Every CSV
/// export writes its cells through this.
pub fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// Every usage record of `team` (or of all teams for PMs and admins when
/// `team` is `None`) in `[from_ms, to_ms)` as CSV, for billing.
pub async fn export_csv(
    pool: &SqlitePool,
    caller: &Principal,
    team: Option<&str>,
    from_ms: i64,
    to_ms: i64,
) -> Result<String, CoreError> {
    match team {
        Some(team) => authorize(caller, Action::ViewTeam(team))?,
        None => authorize(caller, Action::ViewPlatformInsights)?,
    }
    let rows = sqlx::query!(
        r#"SELECT at, team, workspace_id, key_name, provider, model, request_type, input_tokens, output_tokens,
             cost_nanocents, latency_ms, status, error_type, trace_id, idempotency_key, feature
           FROM llm_usage WHERE (?1 IS NULL OR team = ?1) AND at >= ?2 AND at < ?3 ORDER BY at, id"#,
        team,
        from_ms,
        to_ms
    )
    .fetch_all(pool)
    .await?;
    let mut out = String::from("time,team,workspace_id,caller,provider,model,request_type,input_tokens,output_tokens,cost_usd,latency_ms,status,error_type,trace_id,idempotency_key,feature\n");
    for r in rows {
        let time = Timestamp::from_millisecond(r.at)
            .map(|t| t.to_string())
            .unwrap_or_default();
        // Dollars with 11 decimals: exact to the nanocent.
        let cost = format!(
            "{}.{:011}",
            r.cost_nanocents / (100 * NANOCENTS_PER_CENT),
            r.cost_nanocents % (100 * NANOCENTS_PER_CENT)
        );
        let cells = [
            time,
            r.team,
            r.workspace_id,
            r.key_name.unwrap_or_default(),
            r.provider,
            r.model,
            r.request_type,
            r.input_tokens.to_string(),
            r.output_tokens.to_string(),
            cost,
            r.latency_ms.to_string(),
            r.status.to_string(),
            r.error_type.unwrap_or_default(),
            r.trace_id.unwrap_or_default(),
            r.idempotency_key.unwrap_or_default(),
            r.feature.unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    Ok(out)
}

/// The local calendar days of `[start_ms, end_ms)` in `tz` (a period's days, for charts).
pub fn days_between(start_ms: i64, end_ms: i64, tz: &TimeZone) -> Vec<String> {
    // `end` is exclusive: the last day is the one holding its last millisecond.
    let (Ok(start), Ok(last)) = (
        Timestamp::from_millisecond(start_ms),
        Timestamp::from_millisecond(end_ms.max(start_ms + 1) - 1),
    ) else {
        return Vec::new();
    };
    let mut day = start.to_zoned(tz.clone()).date();
    let last = last.to_zoned(tz.clone()).date();
    let mut out = Vec::new();
    while day <= last && out.len() < 400 {
        out.push(day.to_string());
        match day.tomorrow() {
            Ok(next) => day = next,
            Err(_) => break,
        }
    }
    if out.is_empty() {
        out.push(day.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_never_run_as_formulas() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\")"),
            "\"'=HYPERLINK(\"\"http://x\"\")\""
        );
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-2+3"), "'-2+3");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("checkout"), "checkout");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
    }

    #[test]
    fn a_period_lists_its_local_days() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let ms = |s: &str| s.parse::<Timestamp>().unwrap().as_millisecond();
        let days = days_between(ms("2026-02-28T23:00:00Z"), ms("2026-03-31T22:00:00Z"), &tz);
        assert_eq!(days.len(), 31);
        assert_eq!(days[0], "2026-03-01");
        assert_eq!(days[30], "2026-03-31");
        assert_eq!(local_day(ms("2026-03-31T21:59:59Z"), &tz), "2026-03-31");
        // A range ending just after now (a team without a budget) includes today.
        let days = days_between(
            ms("2026-03-10T11:00:00Z"),
            ms("2026-03-12T09:30:00.001Z"),
            &tz,
        );
        assert_eq!(days, ["2026-03-10", "2026-03-11", "2026-03-12"]);
    }
}
