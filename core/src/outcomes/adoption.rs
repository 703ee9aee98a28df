//! Adoption and the platform PM's home: teams onboarded, services created
//! through golden paths, weekly and monthly active people, golden-path
//! runs, gateway calls and spend, secrets written — each as a weekly trend —
//! and every team side by side with its DORA keys, AI cost and NPS.
//!
//! Active people come from `user_activity`: one row per person and day,
//! written the first time [`Activity::touch`] sees them that day.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use paved_shared::adoption::{Adoption, AdoptionWeek, LeadGlance, PlatformHome, TeamRow};
use paved_shared::capabilities::SloState;
use sqlx::SqlitePool;

use crate::auth::{authorize, Action, Principal};
use crate::budgets::money::NANOCENTS_PER_CENT;
use crate::CoreError;

/// Weeks in the adoption trend.
pub const WEEKS: i64 = 12;

/// Remembers who has been seen today, so a person's activity is written
/// once a day, not on every request.
#[derive(Debug, Default)]
pub struct Activity {
    seen: Mutex<(i64, HashSet<i64>)>,
}

impl Activity {
    /// Records that `user` used Paved at `now` (unix seconds): one insert
    /// per person and day, off the request path.
    pub fn touch(&self, pool: &SqlitePool, user: i64, now: i64) {
        let day = now.div_euclid(86_400);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.0 != day {
                *seen = (day, HashSet::new());
            }
            if !seen.1.insert(user) {
                return;
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            if let Err(e) = sqlx::query!(
                "INSERT OR IGNORE INTO user_activity (user_id, day) VALUES (?1, ?2)",
                user,
                day
            )
            .execute(&pool)
            .await
            {
                tracing::warn!(error = %e, "could not record activity");
            }
        });
    }
}

/// The Monday (unix day) of the week holding unix day `day` (1970-01-01 was a Thursday).
pub fn monday_of(day: i64) -> i64 {
    day - (day + 3).rem_euclid(7)
}

fn date_of(day: i64) -> String {
    jiff::Timestamp::from_second(day * 86_400)
        .map(|t| t.to_string()[..10].to_owned())
        .unwrap_or_default()
}

fn cents(nanocents: i64) -> f64 {
    nanocents as f64 / NANOCENTS_PER_CENT as f64
}

/// Adds a day's gateway calls and spend to a team's 30-day row.
trait AddUsage {
    fn add_usage(&mut self, day_index: i64, calls: i64, cost_nanocents: i64);
}

impl AddUsage for TeamRow {
    fn add_usage(&mut self, day_index: i64, calls: i64, cost_nanocents: i64) {
        self.gateway_requests += calls.max(0) as u64;
        self.ai_cost_cents += cents(cost_nanocents);
        if let Some(slot) = usize::try_from(day_index)
            .ok()
            .and_then(|i| self.ai_cost_daily.get_mut(i))
        {
            *slot += cents(cost_nanocents);
        }
    }
}

/// Adoption across the company as of `now` (platform PMs and admins).
pub async fn adoption(
    core: &crate::CoreState,
    principal: &Principal,
    now: i64,
) -> Result<Adoption, CoreError> {
    authorize(principal, Action::ViewPlatformInsights)?;
    compute(&core.db, now).await
}

async fn compute(pool: &SqlitePool, now: i64) -> Result<Adoption, CoreError> {
    let today = now.div_euclid(86_400);
    let first = monday_of(today) - (WEEKS - 1) * 7;
    let since_30 = now - 30 * 86_400;
    let teams_total = sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!: i64" FROM teams"#)
        .fetch_one(pool)
        .await?;
    // Each subquery is read once into a temporary index, not once per team.
    let teams_onboarded = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM teams t
           WHERE 'group:default/' || t.name IN (SELECT owner_ref FROM catalog_entities WHERE orphan = 0 AND owner_ref IS NOT NULL)
              OR t.name IN (SELECT owner_team FROM scaffolder_tasks WHERE owner_team IS NOT NULL)"#
    )
    .fetch_one(pool)
    .await?;
    let services_total = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM catalog_entities WHERE kind_key = 'component' AND orphan = 0"#
    )
    .fetch_one(pool)
    .await?;
    let services_from_golden_paths = sqlx::query_scalar!(
        r#"SELECT COUNT(DISTINCT f.entity_uid) AS "n!: i64"
           FROM catalog_fields f JOIN catalog_entities e ON e.uid = f.entity_uid
           WHERE f.key = 'metadata.annotations.backstage.io/source-template'
             AND e.kind_key = 'component' AND e.orphan = 0"#
    )
    .fetch_one(pool)
    .await?;
    let people_total =
        sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!: i64" FROM users WHERE disabled_at IS NULL"#)
            .fetch_one(pool)
            .await?;
    let (week_ago, month_ago) = (today - 6, today - 29);
    // A person was active since a day when their last active day is on or after it.
    let weekly_active = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM users WHERE last_active_day >= ?1"#,
        week_ago
    )
    .fetch_one(pool)
    .await?;
    let monthly_active = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM users WHERE last_active_day >= ?1"#,
        month_ago
    )
    .fetch_one(pool)
    .await?;
    let saved_minutes = sqlx::query_scalar!(
        r#"SELECT COALESCE(SUM(time_saved_minutes), 0) AS "n!: i64" FROM scaffolder_tasks
           WHERE status = 'completed' AND finished_at >= ?1"#,
        since_30
    )
    .fetch_one(pool)
    .await?;

    let mut weeks: BTreeMap<i64, AdoptionWeek> = (0..WEEKS)
        .map(|i| {
            let day = first + i * 7;
            (
                day,
                AdoptionWeek {
                    week: date_of(day),
                    ..AdoptionWeek::default()
                },
            )
        })
        .collect();
    let week_of = |day: i64| monday_of(day);
    let first_s = first * 86_400;
    for r in sqlx::query!(
        r#"SELECT week AS "week!: i64", people AS "n!: i64" FROM activity_weekly WHERE week >= ?1"#,
        first
    )
    .fetch_all(pool)
    .await?
    {
        if let Some(w) = weeks.get_mut(&r.week) {
            w.active_people = r.n.max(0) as u64;
        }
    }
    for r in sqlx::query!(
        r#"SELECT created_at / 86400 AS "day!: i64", COUNT(*) AS "runs!: i64",
                  SUM(status = 'completed') AS "ok!: i64"
           FROM scaffolder_tasks WHERE created_at >= ?1 GROUP BY 1"#,
        first_s
    )
    .fetch_all(pool)
    .await?
    {
        if let Some(w) = weeks.get_mut(&week_of(r.day)) {
            w.template_runs += r.runs.max(0) as u64;
            w.template_successes += r.ok.max(0) as u64;
        }
    }
    for r in sqlx::query!(
        r#"SELECT day AS "day!: i64", SUM(requests) AS "n!: i64", SUM(cost_nanocents) AS "cost!: i64"
           FROM llm_usage_daily WHERE day >= ?1 GROUP BY day"#,
        first
    )
    .fetch_all(pool)
    .await?
    {
        if let Some(w) = weeks.get_mut(&week_of(r.day)) {
            w.gateway_requests += r.n.max(0) as u64;
            w.gateway_cost_cents += cents(r.cost);
        }
    }
    for r in sqlx::query!(
        r#"SELECT created_at / 86400 AS "day!: i64", COUNT(*) AS "n!: i64"
           FROM secret_versions WHERE created_at >= ?1 GROUP BY 1"#,
        first_s
    )
    .fetch_all(pool)
    .await?
    {
        if let Some(w) = weeks.get_mut(&week_of(r.day)) {
            w.secret_writes += r.n.max(0) as u64;
        }
    }
    let u = |v: i64| v.max(0) as u64;
    Ok(Adoption {
        teams_total: u(teams_total),
        teams_onboarded: u(teams_onboarded),
        services_total: u(services_total),
        services_from_golden_paths: u(services_from_golden_paths),
        people_total: u(people_total),
        weekly_active: u(weekly_active),
        monthly_active: u(monthly_active),
        hours_saved_30d: saved_minutes.max(0) as f64 / 60.0,
        weeks: weeks.into_values().collect(),
    })
}

/// Each team's row over the 30 days before `now` (members, services,
/// golden-path runs, gateway calls and AI cost per day, secrets, NPS), for
/// every team or only `only`, and the latest survey the NPS comes from.
/// DORA is left to the platform home.
#[allow(clippy::type_complexity)]
async fn team_rows(
    pool: &SqlitePool,
    now: i64,
    only: Option<&str>,
) -> Result<
    (
        BTreeMap<String, TeamRow>,
        Option<(String, String, i32, u64)>,
    ),
    CoreError,
> {
    let since = now - 30 * 86_400;
    let first_day = now.div_euclid(86_400) - 29;
    let mut rows: BTreeMap<String, TeamRow> = sqlx::query!(
        r#"SELECT t.name, COUNT(m.user_id) AS "members!: i64"
           FROM teams t LEFT JOIN memberships m ON m.team_id = t.id
           WHERE (?1 IS NULL OR t.name = ?1) GROUP BY t.id ORDER BY t.name"#,
        only
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|t| {
        (
            t.name.clone(),
            TeamRow {
                team: t.name,
                members: t.members.max(0) as u64,
                ai_cost_daily: vec![0.0; 30],
                ..TeamRow::default()
            },
        )
    })
    .collect();
    // A team the catalog names but nobody from it has signed in yet: its
    // row, with no members.
    if let Some(team) = only {
        rows.entry(team.to_owned()).or_insert_with(|| TeamRow {
            team: team.to_owned(),
            ai_cost_daily: vec![0.0; 30],
            ..TeamRow::default()
        });
    }
    let owner = only.map(|t| format!("group:default/{t}"));
    for r in sqlx::query!(
        r#"SELECT owner_ref AS "owner!", COUNT(*) AS "n!: i64" FROM catalog_entities
           WHERE kind_key = 'component' AND orphan = 0 AND owner_ref LIKE 'group:default/%'
             AND (?1 IS NULL OR owner_ref = ?1) GROUP BY owner_ref"#,
        owner
    )
    .fetch_all(pool)
    .await?
    {
        let team = r.owner.trim_start_matches("group:default/");
        if let Some(row) = rows.get_mut(team) {
            row.services = r.n.max(0) as u64;
        }
    }
    for r in sqlx::query!(
        r#"SELECT owner_team AS "team!", COUNT(*) AS "n!: i64" FROM scaffolder_tasks
           WHERE created_at >= ?1 AND owner_team IS NOT NULL AND (?2 IS NULL OR owner_team = ?2)
           GROUP BY owner_team"#,
        since,
        only
    )
    .fetch_all(pool)
    .await?
    {
        if let Some(row) = rows.get_mut(&r.team) {
            row.template_runs = r.n.max(0) as u64;
        }
    }
    for r in sqlx::query!(
        r#"SELECT team, day, requests, cost_nanocents FROM llm_usage_daily
           WHERE day >= ?1 AND (?2 IS NULL OR team = ?2)"#,
        first_day,
        only
    )
    .fetch_all(pool)
    .await?
    {
        if let Some(row) = rows.get_mut(&r.team) {
            row.add_usage(r.day - first_day, r.requests, r.cost_nanocents);
        }
    }
    for r in sqlx::query!(
        r#"SELECT team, COUNT(*) AS "n!: i64" FROM secrets WHERE (?1 IS NULL OR team = ?1) GROUP BY team"#,
        only
    )
    .fetch_all(pool)
    .await?
    {
        if let Some(row) = rows.get_mut(&r.team) {
            row.secrets = r.n.max(0) as u64;
        }
    }
    let (latest, nps) = super::surveys::latest_by_team(pool, now).await?;
    for (team, n) in nps {
        if let Some(row) = rows.get_mut(&team) {
            row.nps = Some(n);
        }
    }
    Ok((rows, latest))
}

/// One team's platform experience over the last 30 days, for its
/// Outcomes page (the team's members, PMs and admins): golden-path runs, AI
/// cost per day, secrets, and its NPS in the latest survey that shows it.
pub async fn team_row(
    core: &crate::CoreState,
    principal: &Principal,
    team: &str,
    now: i64,
) -> Result<TeamRow, CoreError> {
    authorize(principal, Action::ViewTeam(team))?;
    Ok(team_rows(&core.db, now, Some(team))
        .await?
        .0
        .remove(team)
        .unwrap_or_default())
}

/// One team at a glance for its lead's home (the team's members, PMs and
/// admins): the budget's burn and forecast, secrets whose Vault policy or
/// role failed to write, and delivery over the last 30 days against the 30
/// before.
pub async fn lead_glance(
    core: &crate::CoreState,
    principal: &Principal,
    team: &str,
    now: i64,
) -> Result<LeadGlance, CoreError> {
    authorize(principal, Action::ViewTeam(team))?;
    let budget = crate::budgets::page::burn(core, principal, team).await?;
    let secrets_failing = sqlx::query_scalar!(
        r#"SELECT COUNT(*) AS "n!: i64" FROM secret_access WHERE team = ?1 AND last_error IS NOT NULL"#,
        team
    )
    .fetch_one(&core.db)
    .await?;
    let query = super::Query::trailing_30_days(now);
    let dora = super::dora(
        core,
        principal,
        &super::Target::Team(team.to_owned()),
        &query,
    )
    .await?;
    Ok(LeadGlance {
        team: team.to_owned(),
        budget,
        secrets_failing: secrets_failing.max(0) as u64,
        dora,
    })
}

/// The platform home's numbers before sorting and paging: adoption, every
/// team's row (with its DORA), the latest survey, the capabilities that need
/// attention and the golden paths.
#[derive(Debug, Clone)]
pub struct Snapshot {
    adoption: Adoption,
    teams: Vec<TeamRow>,
    latest_survey: Option<(String, String, i32, u64)>,
    attention: Vec<(String, String, String)>,
    golden_paths: Vec<paved_shared::scaffold::TemplateMetrics>,
}

async fn snapshot(core: &crate::CoreState, now: i64) -> Result<Snapshot, CoreError> {
    let pool = &core.db;
    let adoption = compute(pool, now).await?;
    let (mut rows, latest_survey) = team_rows(pool, now, None).await?;
    let board = super::dora_by_team(core, now).await?;
    for (team, dora) in &board.0 {
        if let Some(row) = rows.get_mut(team) {
            row.dora = Some(dora.clone());
        }
    }
    let attention = super::capabilities::list(core, now)
        .await?
        .into_iter()
        .filter(|c| matches!(c.state, SloState::Breached | SloState::AtRisk))
        .map(|c| (c.id, c.name, c.state.label().to_owned()))
        .collect();
    let golden_paths = crate::scaffold::metrics::metrics(core, now - 30 * 86_400).await?;
    Ok(Snapshot {
        adoption,
        teams: rows.into_values().collect(),
        latest_survey,
        attention,
        golden_paths,
    })
}

/// The platform PM's home as of `now` (platform PMs and admins): adoption,
/// one page (from 1) of the teams over the last 30 days sorted by `sort`
/// (an unknown column sorts by AI cost; a page past the end is the last),
/// the latest survey and the capabilities that need attention. The numbers
/// are computed by one caller and kept for `PAVED_DASHBOARD_REFRESH_SECONDS`
/// (a company's worth of teams, usage and answers is read each time).
pub async fn platform_home(
    core: &crate::CoreState,
    principal: &Principal,
    now: i64,
    sort: &str,
    page: u32,
) -> Result<PlatformHome, CoreError> {
    authorize(principal, Action::ViewPlatformInsights)?;
    let refresh = core.config.outcomes.dashboard_refresh_secs;
    let snap = core
        .platform_snapshot
        .get_or_compute(0, 0, now, refresh, snapshot(core, now))
        .await?;
    let sort = paved_shared::adoption::team_sort(sort);
    let mut order: Vec<&TeamRow> = snap.teams.iter().collect();
    paved_shared::adoption::sort_teams(&mut order, sort);
    let size = paved_shared::adoption::TEAM_PAGE_SIZE;
    let pages = order.len().div_ceil(size).max(1);
    let page = (page.max(1) as usize).min(pages);
    Ok(PlatformHome {
        adoption: snap.adoption.clone(),
        teams: order
            .into_iter()
            .skip((page - 1) * size)
            .take(size)
            .cloned()
            .collect(),
        teams_total: snap.teams.len() as u64,
        page: page as u32,
        sort: sort.to_owned(),
        latest_survey: snap.latest_survey.clone(),
        attention: snap.attention.clone(),
        golden_paths: snap.golden_paths.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[sqlx::test(migrations = "../migrations")]
    async fn the_usage_rollups_follow_inserts_and_deletes(pool: SqlitePool) {
        let day = 20_514_i64; // 2026-03-02
        let at = |h: i64| (day * 86_400 + h * 3600) * 1000;
        for (ms, team, model, status, cost, overhead) in [
            (at(1), "a", "m1", 200, 10, Some(1_000)),
            (at(1), "a", "m1", 502, 0, Some(30_000)),
            (at(2), "a", "m2", 429, 0, None),
            (at(25), "b", "m1", 200, 7, Some(25_000)),
        ] {
            sqlx::query(
                "INSERT INTO llm_usage (at, team, provider, model, request_type, cost_nanocents, latency_ms, status, overhead_us)
                 VALUES (?1, ?2, 'p', ?3, 'chat', ?4, 1, ?5, ?6)",
            )
            .bind(ms)
            .bind(team)
            .bind(model)
            .bind(cost)
            .bind(status)
            .bind(overhead)
            .execute(&pool)
            .await
            .unwrap();
        }
        sqlx::query("DELETE FROM llm_usage WHERE status = 429")
            .execute(&pool)
            .await
            .unwrap();
        let daily: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT team, day, requests, cost_nanocents FROM llm_usage_daily WHERE requests > 0 ORDER BY 1, 2",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(
            daily,
            vec![("a".into(), day, 2, 10), ("b".into(), day + 1, 1, 7)]
        );
        let hourly: Vec<(String, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT model, hour, requests, failed, refused, timed, fast FROM llm_usage_model_hourly
             WHERE requests > 0 ORDER BY 2, 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let hour = day * 24;
        assert_eq!(
            hourly,
            vec![
                ("m1".into(), hour + 1, 2, 1, 0, 2, 1),
                ("m1".into(), hour + 25, 1, 0, 0, 1, 1),
            ]
        );
    }

    #[test]
    fn weeks_start_on_monday() {
        // 2026-03-02 is a Monday (unix day 20514); 2026-03-08 the Sunday after.
        assert_eq!(date_of(20_514), "2026-03-02");
        for day in 20_514..20_521 {
            assert_eq!(monday_of(day), 20_514, "{}", date_of(day));
        }
        assert_eq!(monday_of(20_521), 20_521);
        // 1970-01-01 (a Thursday) belongs to the week of 1969-12-29.
        assert_eq!(monday_of(0), -3);
    }
}
