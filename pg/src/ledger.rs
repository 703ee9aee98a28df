//! The LLM budget ledger shared by every replica on PostgreSQL.
//!
//! The SQLite ledger (`paved_core::budgets::ledger`) decides in memory, which
//! is exact only while one process holds all the state. Here each budget is
//! one row, `llm_budget_scopes`, and every change is one call of a function
//! the migration defines (`paved_reserve`, `paved_grow`, `paved_finish`,
//! `paved_expire`): one round trip that locks the budget rows, checks every
//! budget that applies, then holds or charges. Replicas therefore never
//! admit more than a limit between them, whatever they run concurrently, and
//! any replica releases the lapsed holds of one that died.
//!
//! Clocks: each replica passes its own time and the period bounds it computed
//! in the configured time zone; a replica whose clock lags never moves a
//! budget back into an earlier period. Keep replicas on NTP.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use paved_core::budgets::ledger::{
    rfc3339, Clock, Hold, LedgerError, Replay, ReserveRequest, ScopeFigures, ScopeKey, SoftAlert,
    StoredResponse,
};
use paved_core::budgets::money::{cents_ceil, NANOCENTS_PER_CENT};
use paved_core::budgets::period::{self, Period};
use paved_core::budgets::{BudgetRule, OnLimit, IDEMPOTENCY_RETENTION_MS};
use sqlx::PgPool;

/// How a finished reservation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// It was held by this ledger until now.
    Finished,
    /// Another replica had expired it (its hold already released); the cost
    /// was still charged.
    Late,
    /// It was settled or voided before: nothing changed.
    Already,
}

/// The ledger on PostgreSQL. Cheap to clone; one per replica.
#[derive(Clone)]
pub struct SharedLedger {
    pool: PgPool,
    clock: Arc<dyn Clock>,
    tz: TimeZone,
    ttl_ms: i64,
    replica: Arc<str>,
}

impl std::fmt::Debug for SharedLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLedger")
            .field("replica", &self.replica)
            .field("ttl_ms", &self.ttl_ms)
            .finish()
    }
}

fn unavailable(error: sqlx::Error) -> LedgerError {
    tracing::error!(%error, "the shared budget ledger cannot be reached");
    LedgerError::Unavailable("the budget ledger cannot be written".into())
}

/// `[day_start, day_end, week_start, week_end, month_start, month_end]` (unix
/// ms) around `now_ms` in `tz`: every period a budget may have, so the
/// database picks each budget's own.
pub fn period_bounds(tz: &TimeZone, now_ms: i64) -> Vec<i64> {
    let now = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let mut out = Vec::with_capacity(6);
    for p in [Period::Daily, Period::Weekly, Period::Monthly] {
        match period::bounds(p, tz, now) {
            Ok((s, e)) => out.extend([s.as_millisecond(), e.as_millisecond()]),
            // Outside jiff's range: a period of one day from now keeps the ledger working.
            Err(_) => out.extend([now_ms, now_ms + 86_400_000]),
        }
    }
    out
}

impl SharedLedger {
    /// A ledger for this replica (`replica` names it in the reservations).
    pub fn new(
        pool: PgPool,
        tz: TimeZone,
        ttl: std::time::Duration,
        clock: Arc<dyn Clock>,
        replica: &str,
    ) -> Self {
        Self {
            pool,
            clock,
            tz,
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            replica: replica.into(),
        }
    }

    /// Installs or replaces a budget. Spend and holds of the current period
    /// stay; a new period starts when the period kind changes.
    pub async fn apply_rule(&self, rule: &BudgetRule) -> Result<(), sqlx::Error> {
        let now = self.clock.now_ms();
        let (start, end) = period::bounds(
            rule.period,
            &self.tz,
            Timestamp::from_millisecond(now).unwrap_or(Timestamp::UNIX_EPOCH),
        )
        .map(|(s, e)| (s.as_millisecond(), e.as_millisecond()))
        .unwrap_or((now, now + 86_400_000));
        let workspace = rule.workspace_id.clone().unwrap_or_default();
        let limit = rule.limit_cents.saturating_mul(NANOCENTS_PER_CENT);
        sqlx::query!(
            "INSERT INTO llm_budget_scopes (team, workspace_id, period, limit_nanocents, blocking,
                                            soft_alert_percent, period_start, period_end, rpm_limit, tpm_limit)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (team, workspace_id) DO UPDATE SET
                 limit_nanocents = EXCLUDED.limit_nanocents,
                 rpm_limit = EXCLUDED.rpm_limit,
                 tpm_limit = EXCLUDED.tpm_limit,
                 blocking = EXCLUDED.blocking,
                 soft_alert_percent = EXCLUDED.soft_alert_percent,
                 period = EXCLUDED.period,
                 spent_nanocents = CASE WHEN llm_budget_scopes.period = EXCLUDED.period
                                        THEN llm_budget_scopes.spent_nanocents ELSE 0 END,
                 period_start = CASE WHEN llm_budget_scopes.period = EXCLUDED.period
                                     THEN llm_budget_scopes.period_start ELSE EXCLUDED.period_start END,
                 period_end = CASE WHEN llm_budget_scopes.period = EXCLUDED.period
                                   THEN llm_budget_scopes.period_end ELSE EXCLUDED.period_end END",
            rule.team,
            workspace,
            rule.period.as_str(),
            limit,
            rule.on_limit == OnLimit::Block,
            rule.soft_alert_percent,
            start,
            end,
            rule.rpm_limit,
            rule.tpm_limit,
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Holds `request.amount_nanocents` against every budget that applies, in
    /// one round trip, or says which budget refuses.
    pub async fn reserve(&self, request: ReserveRequest) -> Result<Hold, LedgerError> {
        let now = self.clock.now_ms();
        let expires_at = now.saturating_add(self.ttl_ms);
        let bounds = period_bounds(&self.tz, now);
        let (key, hash) = request.idempotency.clone().unzip();
        let row = sqlx::query!(
            r#"SELECT outcome AS "outcome!", scope_workspace, scope_period, limit_nanocents,
                      committed_nanocents, period_end, rate_what, rate_limit, retry_after_secs
                 FROM paved_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
            request.id,
            request.team,
            request.workspace,
            request.model,
            request.amount_nanocents,
            now,
            expires_at,
            &*self.replica,
            key,
            hash,
            &bounds,
            request.estimated_tokens,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        match row.outcome.as_str() {
            "rate_limited" => Err(LedgerError::RateLimited {
                scope: ScopeKey {
                    team: request.team,
                    workspace: row.scope_workspace.unwrap_or_default(),
                },
                what: if row.rate_what.as_deref() == Some("tokens") {
                    "tokens"
                } else {
                    "requests"
                },
                limit: row.rate_limit.unwrap_or_default(),
                retry_after_secs: row
                    .retry_after_secs
                    .and_then(|s| u64::try_from(s).ok())
                    .unwrap_or(1),
            }),
            "held" => Ok(Hold {
                id: request.id,
                team: request.team,
                workspace: request.workspace,
                amount_nanocents: request.amount_nanocents,
                expires_at_ms: expires_at,
                idempotency_key: key,
            }),
            "no_budget" => Err(LedgerError::NoBudget(request.team)),
            "in_flight" => Err(LedgerError::InFlight),
            _ => Err(self.exceeded(
                &request.team,
                row.scope_workspace,
                row.scope_period,
                row.limit_nanocents,
                row.committed_nanocents,
                row.period_end,
                request.amount_nanocents,
            )),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn exceeded(
        &self,
        team: &str,
        workspace: Option<String>,
        period: Option<String>,
        limit: Option<i64>,
        committed: Option<i64>,
        period_end: Option<i64>,
        needed: i64,
    ) -> LedgerError {
        let limit = limit.unwrap_or_default();
        let committed = committed.unwrap_or_default();
        LedgerError::BudgetExceeded {
            scope: ScopeKey {
                team: team.to_owned(),
                workspace: workspace.unwrap_or_default(),
            },
            period: period
                .as_deref()
                .and_then(Period::parse)
                .unwrap_or(Period::Monthly),
            limit_cents: limit / NANOCENTS_PER_CENT,
            committed_nanocents: committed,
            needed_nanocents: needed,
            remaining_cents: (limit - committed).max(0) / NANOCENTS_PER_CENT,
            resets_at: rfc3339(period_end.unwrap_or_default(), &self.tz),
        }
    }

    /// Raises a hold to `amount_nanocents` (a fallback to a dearer model),
    /// taking only the difference, atomically across the fleet; refuses,
    /// leaving the hold unchanged, when it does not fit.
    pub async fn grow(&self, hold: &mut Hold, amount_nanocents: i64) -> Result<(), LedgerError> {
        if amount_nanocents <= hold.amount_nanocents {
            return Ok(());
        }
        let bounds = period_bounds(&self.tz, self.clock.now_ms());
        let row = sqlx::query!(
            r#"SELECT outcome AS "outcome!", scope_workspace, scope_period, limit_nanocents,
                      committed_nanocents, period_end
                 FROM paved_grow($1, $2, $3)"#,
            hold.id,
            amount_nanocents,
            &bounds,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        match row.outcome.as_str() {
            "grown" => {
                hold.amount_nanocents = amount_nanocents;
                Ok(())
            }
            "lapsed" => Err(LedgerError::Unavailable(
                "the budget hold lapsed before the fallback".into(),
            )),
            _ => Err(self.exceeded(
                &hold.team,
                row.scope_workspace,
                row.scope_period,
                row.limit_nanocents,
                row.committed_nanocents,
                row.period_end,
                amount_nanocents - hold.amount_nanocents,
            )),
        }
    }

    /// Settles a hold to its actual cost (`tokens` count against
    /// tokens-per-minute limits) and keeps the response for idempotent
    /// replay. Returns how it ended and the soft alert this charge raised
    /// (once per budget and period across the fleet).
    pub async fn settle(
        &self,
        hold: &Hold,
        cost_nanocents: i64,
        tokens: i64,
        response: Option<&StoredResponse>,
    ) -> Result<(Finished, Option<SoftAlert>), LedgerError> {
        self.finish(hold, "settled", cost_nanocents, tokens, response)
            .await
    }

    /// Voids a hold: the request failed before anything was charged.
    pub async fn void(&self, hold: &Hold) -> Result<Finished, LedgerError> {
        self.finish(hold, "voided", 0, 0, None)
            .await
            .map(|(finished, _)| finished)
    }

    async fn finish(
        &self,
        hold: &Hold,
        state: &str,
        cost: i64,
        tokens: i64,
        response: Option<&StoredResponse>,
    ) -> Result<(Finished, Option<SoftAlert>), LedgerError> {
        let now = self.clock.now_ms();
        let bounds = period_bounds(&self.tz, now);
        let row = sqlx::query!(
            r#"SELECT outcome AS "outcome!", alert_workspace, alert_percent, alert_spent_nanocents,
                      alert_limit_nanocents, alert_period_start
                 FROM paved_finish($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
            hold.id,
            state,
            cost,
            now,
            &bounds,
            response.map(|r| i32::from(r.status)),
            response.map(|r| r.content_type.as_str()),
            response.map(|r| r.body.as_ref()),
            tokens,
        )
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let finished = match row.outcome.as_str() {
            "finished" => Finished::Finished,
            "late" => Finished::Late,
            _ => Finished::Already,
        };
        let alert = match (
            row.alert_workspace,
            row.alert_percent,
            row.alert_spent_nanocents,
            row.alert_limit_nanocents,
            row.alert_period_start,
        ) {
            (Some(workspace), Some(percent), Some(spent), Some(limit), Some(start)) => {
                Some(SoftAlert {
                    scope: ScopeKey {
                        team: hold.team.clone(),
                        workspace,
                    },
                    percent,
                    spent_cents: cents_ceil(spent),
                    limit_cents: limit / NANOCENTS_PER_CENT,
                    period_start_ms: start,
                })
            }
            _ => None,
        };
        Ok((finished, alert))
    }

    /// What an idempotency key finds, fleet-wide: still running (on any
    /// replica), finished with an answer to send again, used with another
    /// body, or new (never seen, outside the retention window, or its
    /// request failed without an answer).
    pub async fn replay(
        &self,
        team: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<Replay, LedgerError> {
        let row = sqlx::query!(
            "SELECT request_hash, state, response_status, response_type, response_body, created_at
               FROM llm_reservations WHERE team = $1 AND idempotency_key = $2",
            team,
            key
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(Replay::New);
        };
        if row.created_at < self.clock.now_ms() - IDEMPOTENCY_RETENTION_MS {
            return Ok(Replay::New);
        }
        if row.request_hash.as_deref() != Some(request_hash) {
            return Ok(Replay::DifferentBody);
        }
        Ok(
            match (row.state.as_str(), row.response_status, row.response_body) {
                ("held", _, _) => Replay::InFlight,
                (_, Some(status), Some(body)) => Replay::Stored(Arc::new(StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    content_type: row
                        .response_type
                        .unwrap_or_else(|| "application/json".into()),
                    body: body.into(),
                })),
                _ => Replay::New,
            },
        )
    }

    /// Releases every hold whose time has passed, whichever replica made it;
    /// returns how many.
    pub async fn expire_lapsed(&self) -> Result<i64, sqlx::Error> {
        let lapsed = sqlx::query_scalar!(
            r#"SELECT paved_expire($1) AS "lapsed!""#,
            self.clock.now_ms()
        )
        .fetch_one(&self.pool)
        .await?;
        if lapsed > 0 {
            tracing::warn!(
                lapsed,
                replica = %self.replica,
                "reservations expired unsettled; their budget is released"
            );
        }
        Ok(lapsed)
    }

    /// This budget's figures now, if it exists (as every replica sees them).
    pub async fn figures(
        &self,
        team: &str,
        workspace: &str,
    ) -> Result<Option<ScopeFigures>, sqlx::Error> {
        let now = self.clock.now_ms();
        let bounds = period_bounds(&self.tz, now);
        let row = sqlx::query!(
            r#"SELECT s.spent_nanocents, s.reserved_nanocents, s.period_start, s.period_end,
                      b.start_ms AS "current_start!", b.end_ms AS "current_end!"
                 FROM llm_budget_scopes s
                 CROSS JOIN LATERAL paved_period_bounds(s.period, $3) b
                WHERE s.team = $1 AND s.workspace_id = $2"#,
            team,
            workspace,
            &bounds,
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| {
            // A period nobody has reserved in yet: nothing spent in it.
            let rolled = r.current_start > r.period_start;
            ScopeFigures {
                spent_nanocents: if rolled { 0 } else { r.spent_nanocents },
                reserved_nanocents: r.reserved_nanocents,
                period_start_ms: if rolled {
                    r.current_start
                } else {
                    r.period_start
                },
                period_end_ms: if rolled { r.current_end } else { r.period_end },
            }
        }))
    }

    /// Holds not yet settled, voided or expired, fleet-wide.
    pub async fn held_count(&self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar!(r#"SELECT COUNT(*) AS "n!" FROM llm_reservations WHERE state = 'held'"#)
            .fetch_one(&self.pool)
            .await
    }
}
