//! Each team's gateway settings (response cache, guardrails, request logs,
//! provider-key rotation policy), kept in memory for the request path and
//! written through to SQLite; and the team's request logs.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sqlx::SqlitePool;

use crate::auth::{authorize, Action, Principal};
use crate::budgets::ledger::rfc3339;
use crate::CoreError;
pub use paved_shared::budgets::{
    CacheSaving, GatewaySettings, GuardAction, ProviderKeyAge, RequestLogEntry,
};

use super::guardrails::{self, Detector};

/// Every team's settings, read once at start and updated on every change.
#[derive(Debug, Default)]
pub struct Settings {
    teams: RwLock<HashMap<String, Arc<Team>>>,
}

/// One team's settings, with the detectors parsed.
#[derive(Debug, Clone, Default)]
pub struct Team {
    /// As saved.
    pub settings: GatewaySettings,
    /// The detectors, parsed.
    pub detectors: Vec<Detector>,
}

impl Team {
    fn from(settings: GatewaySettings) -> Self {
        let detectors = settings
            .guardrail_detectors
            .iter()
            .filter_map(|d| Detector::parse(d))
            .collect();
        Self {
            settings,
            detectors,
        }
    }
}

struct Row {
    team: String,
    cache_ttl_secs: i64,
    guardrail_detectors: String,
    guardrail_prompt: String,
    guardrail_response: String,
    log_requests: i64,
    log_bodies: i64,
    log_retention_days: i64,
    key_rotation_days: Option<i64>,
}

fn action(raw: &str) -> GuardAction {
    match raw {
        "report" => GuardAction::Report,
        "redact" => GuardAction::Redact,
        "block" => GuardAction::Block,
        _ => GuardAction::Off,
    }
}

impl Row {
    fn settings(self) -> GatewaySettings {
        GatewaySettings {
            cache_ttl_secs: self.cache_ttl_secs,
            guardrail_detectors: serde_json::from_str(&self.guardrail_detectors)
                .unwrap_or_default(),
            guardrail_prompt: action(&self.guardrail_prompt),
            guardrail_response: action(&self.guardrail_response),
            log_requests: self.log_requests != 0,
            log_bodies: self.log_bodies != 0,
            log_retention_days: self.log_retention_days,
            key_rotation_days: self.key_rotation_days,
        }
    }
}

impl Settings {
    /// Reads every team's settings.
    pub async fn load(pool: &SqlitePool) -> Result<Self, sqlx::Error> {
        let rows = sqlx::query_as!(
            Row,
            r#"SELECT team AS "team!", cache_ttl_secs, guardrail_detectors, guardrail_prompt, guardrail_response, log_requests, log_bodies, log_retention_days, key_rotation_days FROM llm_gateway_settings"#
        )
        .fetch_all(pool)
        .await?;
        let teams = rows
            .into_iter()
            .map(|r| (r.team.clone(), Arc::new(Team::from(r.settings()))))
            .collect();
        Ok(Self {
            teams: RwLock::new(teams),
        })
    }

    /// `team`'s settings (the defaults when it has none).
    pub fn of(&self, team: &str) -> Arc<Team> {
        self.teams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(team)
            .cloned()
            .unwrap_or_default()
    }

    fn put(&self, team: &str, settings: GatewaySettings) {
        self.teams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(team.to_owned(), Arc::new(Team::from(settings)));
    }
}

/// `team`'s gateway settings (its members, platform PMs and admins).
pub async fn get(
    settings: &Settings,
    pool: &SqlitePool,
    caller: &Principal,
    team: &str,
) -> Result<GatewaySettings, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    crate::budgets::require_team(pool, team).await?;
    Ok(settings.of(team).settings.clone())
}

/// Saves `team`'s gateway settings (its leads and platform admins), audited;
/// in force for the next request.
pub async fn set(
    settings: &Settings,
    pool: &SqlitePool,
    caller: &Principal,
    team: &str,
    input: GatewaySettings,
) -> Result<GatewaySettings, CoreError> {
    authorize(caller, Action::LeadTeam(team))?;
    crate::budgets::require_team(pool, team).await?;
    let problems = input.problems();
    if !problems.is_empty() {
        return Err(CoreError::InvalidFields(problems));
    }
    let mut input = input;
    input.guardrail_detectors.sort();
    input.guardrail_detectors.dedup();
    let before = settings.of(team).settings.clone();
    let detectors = serde_json::to_string(&input.guardrail_detectors).unwrap_or_default();
    let (prompt, response) = (
        input.guardrail_prompt.as_str(),
        input.guardrail_response.as_str(),
    );
    let actor = caller.actor();
    let now = crate::now_unix();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    sqlx::query!(
        r#"INSERT INTO llm_gateway_settings (team, cache_ttl_secs, guardrail_detectors, guardrail_prompt, guardrail_response,
             log_requests, log_bodies, log_retention_days, key_rotation_days, updated_by, updated_at)
           VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
           ON CONFLICT (team) DO UPDATE SET cache_ttl_secs = excluded.cache_ttl_secs,
             guardrail_detectors = excluded.guardrail_detectors, guardrail_prompt = excluded.guardrail_prompt,
             guardrail_response = excluded.guardrail_response, log_requests = excluded.log_requests,
             log_bodies = excluded.log_bodies, log_retention_days = excluded.log_retention_days,
             key_rotation_days = excluded.key_rotation_days, updated_by = excluded.updated_by,
             updated_at = excluded.updated_at"#,
        team,
        input.cache_ttl_secs,
        detectors,
        prompt,
        response,
        input.log_requests,
        input.log_bodies,
        input.log_retention_days,
        input.key_rotation_days,
        actor,
        now
    )
    .execute(&mut *tx)
    .await?;
    crate::audit::record(
        &mut *tx,
        &actor,
        "llm.gateway_settings.update",
        &format!("team:{team}"),
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&input).ok(),
    )
    .await?;
    tx.commit().await?;
    settings.put(team, input.clone());
    Ok(input)
}

/// The most recent request logs of `team`, newest first, before `before_id`
/// (its members, platform PMs and admins).
pub async fn request_logs(
    pool: &SqlitePool,
    tz: &jiff::tz::TimeZone,
    caller: &Principal,
    team: &str,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<RequestLogEntry>, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    crate::budgets::require_team(pool, team).await?;
    let before = before_id.unwrap_or(i64::MAX);
    let limit = limit.clamp(1, 200);
    let rows = sqlx::query!(
        r#"SELECT id AS "id!", at, key_name, request_type, model, deployment, status, latency_ms, feature, trace_id,
                  cache_hit, guardrails, request_body, response_body
           FROM llm_request_logs WHERE team = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"#,
        team,
        before,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RequestLogEntry {
            id: r.id,
            at: rfc3339(r.at, tz),
            key_name: r.key_name,
            request_type: r.request_type,
            model: r.model,
            deployment: r.deployment,
            status: u16::try_from(r.status).unwrap_or(0),
            latency_ms: r.latency_ms,
            feature: r.feature,
            trace_id: r.trace_id,
            cache_hit: r.cache_hit != 0,
            guardrails: r.guardrails,
            request_body: r.request_body,
            response_body: r.response_body,
        })
        .collect())
}

/// What the cache saved `team` per feature from `from_ms` on (its members,
/// platform PMs and admins), most saved first.
pub async fn cache_savings(
    pool: &SqlitePool,
    caller: &Principal,
    team: &str,
    from_ms: i64,
) -> Result<Vec<CacheSaving>, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    crate::budgets::require_team(pool, team).await?;
    let rows = sqlx::query!(
        r#"SELECT feature, COUNT(*) AS "hits!: i64", COALESCE(SUM(saved_nanocents), 0) AS "saved!: i64"
           FROM llm_usage WHERE team = ?1 AND at >= ?2 AND cache_hit = 1
           GROUP BY feature ORDER BY 3 DESC"#,
        team,
        from_ms
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CacheSaving {
            feature: r.feature,
            hits: r.hits,
            saved_cents: r.saved as f64 / crate::budgets::money::NANOCENTS_PER_CENT as f64,
        })
        .collect())
}

/// How old `team`'s own provider keys are against its rotation policy;
/// `None` when the team has set none (its members, platform PMs and admins).
pub async fn provider_key_age(
    settings: &Settings,
    pool: &SqlitePool,
    tz: &jiff::tz::TimeZone,
    caller: &Principal,
    team: &str,
    now_s: i64,
) -> Result<Option<ProviderKeyAge>, CoreError> {
    authorize(caller, Action::ViewTeam(team))?;
    crate::budgets::require_team(pool, team).await?;
    let holder = paved_shared::secrets::LLM_HOLDER;
    let updated = sqlx::query_scalar!(
        "SELECT updated_at FROM secrets WHERE team = ?1 AND holder = ?2",
        team,
        holder
    )
    .fetch_optional(pool)
    .await?;
    let rotation_days = settings.of(team).settings.key_rotation_days;
    Ok(updated.map(|at| {
        let age_days = (now_s - at).max(0) / 86_400;
        ProviderKeyAge {
            updated_at: rfc3339(at * 1000, tz),
            age_days,
            rotation_days,
            overdue: rotation_days.is_some_and(|d| age_days >= d),
        }
    }))
}

/// Reminds each team whose own provider keys outlived its rotation policy,
/// once per version of the keys (a notification to the team); returns how
/// many teams were reminded.
pub async fn remind_key_rotations(pool: &SqlitePool, now_s: i64) -> Result<usize, CoreError> {
    let holder = paved_shared::secrets::LLM_HOLDER;
    let due = sqlx::query!(
        r#"SELECT s.team AS "team!", s.current_version, s.updated_at, g.key_rotation_days AS "days!: i64"
           FROM secrets s JOIN llm_gateway_settings g ON g.team = s.team
           WHERE s.holder = ?1 AND g.key_rotation_days IS NOT NULL
             AND s.updated_at <= ?2 - g.key_rotation_days * 86400
             AND NOT EXISTS (SELECT 1 FROM llm_key_reminders r WHERE r.team = s.team AND r.version = s.current_version)"#,
        holder,
        now_s
    )
    .fetch_all(pool)
    .await?;
    let mut reminded = 0;
    for row in &due {
        let age = (now_s - row.updated_at) / 86_400;
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let fresh = sqlx::query!(
            "INSERT OR IGNORE INTO llm_key_reminders (team, version, sent_at) VALUES (?1, ?2, ?3)",
            row.team,
            row.current_version,
            now_s
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            reminded += 1;
            crate::notifications::send_in(
                &mut *tx,
                &[format!("group:default/{}", row.team)],
                &format!("Rotate the LLM provider keys of team {}", row.team),
                Some(&format!(
                    "They were set {age} days ago; the team rotates them every {} days. A team lead sets new keys under LLM provider keys on the team page. Requests keep using the old key until the new one has answered once, so rotating causes no downtime.",
                    row.days
                )),
                Some(&format!("/teams/{}", row.team)),
                crate::notifications::Severity::High,
                Some("llm-gateway"),
                now_s,
            )
            .await?;
        }
        tx.commit().await?;
    }
    Ok(reminded)
}

/// Deletes request logs older than their team's retention (7 days for a
/// team without settings), by the ledger's clock; returns how many.
pub async fn purge_request_logs(pool: &SqlitePool, now_ms: i64) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query!(
        r#"DELETE FROM llm_request_logs
           WHERE at < ?1 - 86400000 * COALESCE(
             (SELECT s.log_retention_days FROM llm_gateway_settings s WHERE s.team = llm_request_logs.team), 7)"#,
        now_ms
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(deleted)
}

/// The longest body kept in a request log.
pub const MAX_LOGGED_BODY_BYTES: usize = 64 * 1024;

/// `text` as a log keeps it: every secret and personal detail replaced by
/// its placeholder, cut at [`MAX_LOGGED_BODY_BYTES`].
pub fn mask(text: &str) -> String {
    let matches = guardrails::scan(text, &Detector::ALL);
    let mut masked = guardrails::redact(text, &matches);
    if masked.len() > MAX_LOGGED_BODY_BYTES {
        let mut end = MAX_LOGGED_BODY_BYTES;
        while !masked.is_char_boundary(end) {
            end -= 1;
        }
        masked.truncate(end);
        masked.push_str("… (cut)");
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_never_keep_a_secret() {
        let masked = mask(
            r#"{"messages":[{"content":"mail ana@example.com key sk-proj-AbC123dEf456GhI789jKl0"}]}"#,
        );
        assert!(!masked.contains("ana@example.com"), "{masked}");
        assert!(!masked.contains("sk-proj"), "{masked}");
        assert!(masked.contains("[EMAIL]") && masked.contains("[API_KEY]"));
        let long = "é".repeat(MAX_LOGGED_BODY_BYTES);
        assert!(mask(&long).ends_with("… (cut)"));
    }
}
