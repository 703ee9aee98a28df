//! The LLM budget ledger shared by every replica on PostgreSQL.
//!
//! The SQLite ledger (`paved_core::budgets::ledger`) decides in memory, which
//! is exact only while one process holds all the state. Here each budget is
//! one row, `llm_budget_scopes`, and every change is one call of a function
//! the migrations define (`paved_reserve_many`, `paved_grow`,
//! `paved_finish_many`, `paved_expire`): one round trip that locks the budget rows, checks every
//! budget that applies, then holds or charges. Replicas therefore never
//! admit more than a limit between them, whatever they run concurrently, and
//! any replica releases the lapsed holds of one that died.
//!
//! Clocks: each replica passes its own time and the period bounds it computed
//! in the configured time zone; a replica whose clock lags never moves a
//! budget back into an earlier period. Keep replicas on NTP.

use std::sync::Arc;

use jiff::tz::TimeZone;
use paved_core::budgets::ledger::{
    bounds, rfc3339, Clock, Hold, LedgerError, Replay, ReserveRequest, ScopeFigures, ScopeKey,
    SoftAlert, StoredResponse,
};
use paved_core::budgets::money::{cents_ceil, NANOCENTS_PER_CENT};
use paved_core::budgets::period::Period;
use paved_core::budgets::{BudgetRule, OnLimit, IDEMPOTENCY_RETENTION_MS};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

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
    reserves: mpsc::UnboundedSender<ReserveJob>,
    finishes: mpsc::UnboundedSender<FinishJob>,
}

/// What one reservation's call answered (`idx`: its 1-based place in the batch).
#[derive(Debug)]
struct ReserveRow {
    idx: i32,
    outcome: String,
    scope_workspace: Option<String>,
    scope_period: Option<String>,
    limit_nanocents: Option<i64>,
    committed_nanocents: Option<i64>,
    period_end: Option<i64>,
    rate_what: Option<String>,
    rate_limit: Option<i64>,
    retry_after_secs: Option<i64>,
}

/// What one finish's call answered (`idx`: its 1-based place in the batch).
#[derive(Debug)]
struct FinishRow {
    idx: i32,
    outcome: String,
    alert_workspace: Option<String>,
    alert_percent: Option<i64>,
    alert_spent_nanocents: Option<i64>,
    alert_limit_nanocents: Option<i64>,
    alert_period_start: Option<i64>,
}

struct ReserveJob {
    request: ReserveRequest,
    ack: oneshot::Sender<Result<(ReserveRow, i64), LedgerError>>,
}

struct FinishJob {
    id: String,
    state: &'static str,
    cost: i64,
    tokens: i64,
    response: Option<StoredResponse>,
    ack: oneshot::Sender<Result<FinishRow, LedgerError>>,
}

/// At most this many requests share one call.
const MAX_BATCH: usize = 256;

/// Takes the first job, then whatever else has queued meanwhile.
async fn next_batch<T>(jobs: &mut mpsc::UnboundedReceiver<T>) -> Option<Vec<T>> {
    let first = jobs.recv().await?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Sends the reservations that arrived while the previous call ran as one
/// call (one call in flight per replica: under load the batches grow, so a
/// busy budget row is locked once per batch instead of once per request).
async fn reserve_batches(
    pool: PgPool,
    clock: Arc<dyn Clock>,
    tz: TimeZone,
    ttl_ms: i64,
    replica: Arc<str>,
    mut jobs: mpsc::UnboundedReceiver<ReserveJob>,
) {
    while let Some(batch) = next_batch(&mut jobs).await {
        let now = clock.now_ms();
        let expires_at = now.saturating_add(ttl_ms);
        let bounds = period_bounds(&tz, now);
        let column = |f: fn(&ReserveRequest) -> String| -> Vec<String> {
            batch.iter().map(|j| f(&j.request)).collect()
        };
        let ids = column(|r| r.id.clone());
        let teams = column(|r| r.team.clone());
        let workspaces = column(|r| r.workspace.clone());
        let models = column(|r| r.model.clone());
        let amounts: Vec<i64> = batch.iter().map(|j| j.request.amount_nanocents).collect();
        let keys: Vec<Option<String>> = batch
            .iter()
            .map(|j| j.request.idempotency.as_ref().map(|(k, _)| k.clone()))
            .collect();
        let hashes: Vec<Option<String>> = batch
            .iter()
            .map(|j| j.request.idempotency.as_ref().map(|(_, h)| h.clone()))
            .collect();
        let tokens: Vec<i64> = batch.iter().map(|j| j.request.estimated_tokens).collect();
        let rows = sqlx::query_as!(
            ReserveRow,
            r#"SELECT idx AS "idx!", outcome AS "outcome!", scope_workspace, scope_period, limit_nanocents,
                      committed_nanocents, period_end, rate_what, rate_limit, retry_after_secs
                 FROM paved_reserve_many($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#,
            &ids,
            &teams,
            &workspaces,
            &models,
            &amounts,
            &keys as &[Option<String>],
            &hashes as &[Option<String>],
            &tokens,
            now,
            expires_at,
            &*replica,
            &bounds,
        )
        .fetch_all(&pool)
        .await;
        let acks = batch.into_iter().map(|j| j.ack).collect();
        answer(
            acks,
            rows.map(|rows| rows.into_iter().map(|row| (row.idx, (row, expires_at)))),
        );
    }
}

/// Sends the finishes that arrived while the previous call ran as one call.
async fn finish_batches(
    pool: PgPool,
    clock: Arc<dyn Clock>,
    tz: TimeZone,
    mut jobs: mpsc::UnboundedReceiver<FinishJob>,
) {
    while let Some(batch) = next_batch(&mut jobs).await {
        let now = clock.now_ms();
        let bounds = period_bounds(&tz, now);
        let ids: Vec<String> = batch.iter().map(|j| j.id.clone()).collect();
        let states: Vec<String> = batch.iter().map(|j| j.state.to_owned()).collect();
        let costs: Vec<i64> = batch.iter().map(|j| j.cost).collect();
        let tokens: Vec<i64> = batch.iter().map(|j| j.tokens).collect();
        let statuses: Vec<Option<i32>> = batch
            .iter()
            .map(|j| j.response.as_ref().map(|r| i32::from(r.status)))
            .collect();
        let types: Vec<Option<String>> = batch
            .iter()
            .map(|j| j.response.as_ref().map(|r| r.content_type.clone()))
            .collect();
        let bodies: Vec<Option<Vec<u8>>> = batch
            .iter()
            .map(|j| j.response.as_ref().map(|r| r.body.to_vec()))
            .collect();
        let rows = sqlx::query_as!(
            FinishRow,
            r#"SELECT idx AS "idx!", outcome AS "outcome!", alert_workspace, alert_percent,
                      alert_spent_nanocents, alert_limit_nanocents, alert_period_start
                 FROM paved_finish_many($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
            &ids,
            &states,
            &costs,
            &tokens,
            &statuses as &[Option<i32>],
            &types as &[Option<String>],
            &bodies as &[Option<Vec<u8>>],
            now,
            &bounds,
        )
        .fetch_all(&pool)
        .await;
        let acks = batch.into_iter().map(|j| j.ack).collect();
        answer(
            acks,
            rows.map(|rows| rows.into_iter().map(|row| (row.idx, row))),
        );
    }
}

/// Hands each request of a batch its row (`idx` is 1-based), or the
/// refusal every request gets when the call failed.
fn answer<T, Rows>(
    acks: Vec<oneshot::Sender<Result<T, LedgerError>>>,
    rows: Result<Rows, sqlx::Error>,
) where
    Rows: IntoIterator<Item = (i32, T)>,
{
    match rows {
        Ok(rows) => {
            let mut acks: Vec<Option<_>> = acks.into_iter().map(Some).collect();
            for (idx, reply) in rows {
                if let Some(ack) = usize::try_from(idx - 1)
                    .ok()
                    .and_then(|i| acks.get_mut(i))
                    .and_then(Option::take)
                {
                    let _ = ack.send(Ok(reply));
                }
            }
        }
        Err(error) => {
            let refusal = unavailable(error);
            for ack in acks {
                let _ = ack.send(Err(refusal.clone()));
            }
        }
    }
}

impl std::fmt::Debug for SharedLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLedger")
            .field("replica", &self.replica)
            .field("ttl_ms", &self.ttl_ms)
            .finish()
    }
}

fn stopped() -> LedgerError {
    LedgerError::Unavailable("the budget ledger stopped".into())
}

fn unavailable(error: sqlx::Error) -> LedgerError {
    tracing::error!(%error, "the shared budget ledger cannot be reached");
    LedgerError::Unavailable("the budget ledger cannot be written".into())
}

/// `[day_start, day_end, week_start, week_end, month_start, month_end]` (unix
/// ms) around `now_ms` in `tz`: every period a budget may have, so the
/// database picks each budget's own.
pub fn period_bounds(tz: &TimeZone, now_ms: i64) -> Vec<i64> {
    [Period::Daily, Period::Weekly, Period::Monthly]
        .into_iter()
        .flat_map(|p| {
            let (start, end) = bounds(p, tz, now_ms);
            [start, end]
        })
        .collect()
}

impl SharedLedger {
    /// A ledger for this replica (`replica` names it in the reservations).
    /// Starts its two batching tasks, so call it inside a Tokio runtime.
    pub fn new(
        pool: PgPool,
        tz: TimeZone,
        ttl: std::time::Duration,
        clock: Arc<dyn Clock>,
        replica: &str,
    ) -> Self {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let replica: Arc<str> = replica.into();
        let (reserves, reserve_jobs) = mpsc::unbounded_channel();
        let (finishes, finish_jobs) = mpsc::unbounded_channel();
        tokio::spawn(reserve_batches(
            pool.clone(),
            clock.clone(),
            tz.clone(),
            ttl_ms,
            replica.clone(),
            reserve_jobs,
        ));
        tokio::spawn(finish_batches(
            pool.clone(),
            clock.clone(),
            tz.clone(),
            finish_jobs,
        ));
        Self {
            pool,
            clock,
            tz,
            ttl_ms,
            replica,
            reserves,
            finishes,
        }
    }

    /// Installs or replaces a budget. Spend and holds of the current period
    /// stay; a new period starts when the period kind changes.
    pub async fn apply_rule(&self, rule: &BudgetRule) -> Result<(), sqlx::Error> {
        let (start, end) = bounds(rule.period, &self.tz, self.clock.now_ms());
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
        let (ack, answer) = oneshot::channel();
        let key = request.idempotency.as_ref().map(|(k, _)| k.clone());
        self.reserves
            .send(ReserveJob {
                request: request.clone(),
                ack,
            })
            .map_err(|_| stopped())?;
        let (row, expires_at) = answer.await.map_err(|_| stopped())??;
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
        state: &'static str,
        cost: i64,
        tokens: i64,
        response: Option<&StoredResponse>,
    ) -> Result<(Finished, Option<SoftAlert>), LedgerError> {
        let (ack, answer) = oneshot::channel();
        self.finishes
            .send(FinishJob {
                id: hold.id.clone(),
                state,
                cost,
                tokens,
                response: response.cloned(),
                ack,
            })
            .map_err(|_| stopped())?;
        let row = answer.await.map_err(|_| stopped())??;
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
                (_, Some(status), Some(body)) => Replay::Stored(Arc::new(
                    StoredResponse::from_row(i64::from(status), row.response_type, body),
                )),
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
