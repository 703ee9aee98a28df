//! The two-phase budget ledger (REFERENCE §4, after TigerBeetle's two-phase
//! transfers). Before a gateway request reaches a provider, its worst-case
//! cost is *reserved* atomically against every budget that applies (the team's
//! and, when set, the workspace's); afterwards it is *settled* to the actual
//! cost or *voided*. Reservations carry a TTL, so a crash cannot hold budget
//! forever. Limits are inclusive: spend may reach the limit exactly, and a
//! request that would cross it is refused.
//!
//! The ledger's state lives in memory behind one mutex (every check-and-hold
//! is a few integer operations), and every change is written to SQLite by one
//! writer task that commits in groups. A reservation is committed before the
//! provider is called, so after a crash every in-flight reservation is still
//! on disk and keeps counting until its TTL; if it cannot be committed the
//! request is refused (fail closed). Settlements and usage records follow
//! asynchronously; [`Ledger::flush`] waits for them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::money::cents_ceil;
use super::money::NANOCENTS_PER_CENT;
use super::period::{self, Period};
use super::{BudgetRule, OnLimit};

/// Settled spend is kept in 15-minute buckets: every real time zone's
/// midnight falls on one, so any period's spend is a sum of whole buckets.
const BUCKET_MS: i64 = 15 * 60 * 1000;
/// How much history the ledger keeps in memory (the longest period plus a day).
const HISTORY_MS: i64 = 32 * 24 * 3600 * 1000;
/// Writes committed together at most.
const MAX_BATCH: usize = 2048;
/// How long settlements, usage records and expiries may wait for company
/// before they are committed (reservations never wait).
const DEFER: std::time::Duration = std::time::Duration::from_millis(4);

/// The time the ledger uses; tests pass a [`ManualClock`].
pub trait Clock: Send + Sync + 'static {
    /// Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        Timestamp::now().as_millisecond()
    }
}

/// The system clock moved by a fixed offset: time passes as usual, from a
/// chosen starting instant (`PAVED_CLOCK_START`, for tests and demos that must
/// not depend on today's date).
#[derive(Debug)]
pub struct OffsetClock {
    offset_ms: i64,
}

impl OffsetClock {
    /// A clock that reads `start_ms` now and advances in real time.
    pub fn starting_at(start_ms: i64) -> Self {
        Self {
            offset_ms: start_ms - Timestamp::now().as_millisecond(),
        }
    }
    /// A clock `offset_ms` ahead of the system clock (behind when negative).
    pub fn with_offset(offset_ms: i64) -> Self {
        Self { offset_ms }
    }
}

impl Clock for OffsetClock {
    fn now_ms(&self) -> i64 {
        Timestamp::now().as_millisecond() + self.offset_ms
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock stopped at `ms`.
    pub fn at(ms: i64) -> Self {
        Self(AtomicI64::new(ms))
    }
    /// Sets the time.
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Which budget a refusal or figure is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeKey {
    /// The team.
    pub team: String,
    /// `""` for the team-wide budget, else the workspace.
    pub workspace: String,
}

impl ScopeKey {
    /// A person-readable name: `team payments` or `workspace checkout of team payments`.
    pub fn describe(&self) -> String {
        if self.workspace.is_empty() {
            format!("team {}", self.team)
        } else {
            format!("workspace {} of team {}", self.workspace, self.team)
        }
    }
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LedgerError {
    /// The team has no budget, so the gateway does not spend for it.
    #[error("team {0} has no LLM budget yet: a team lead sets one on the team's Budget page")]
    NoBudget(String),
    /// The request would take spend past a blocking limit.
    #[error("{} budget of ${} per {} is exhausted: ${} spent or reserved, this request needs up to ${}; it resets at {}", .scope.describe(), dollars(*.limit_cents * NANOCENTS_PER_CENT), period_word(.period), dollars(*.committed_nanocents), dollars(*.needed_nanocents), .resets_at)]
    BudgetExceeded {
        /// The budget that refused.
        scope: ScopeKey,
        /// Its period.
        period: Period,
        /// Its limit.
        limit_cents: i64,
        /// Spent plus reserved before this request.
        committed_nanocents: i64,
        /// This request's worst case.
        needed_nanocents: i64,
        /// What is left (cents, rounded down).
        remaining_cents: i64,
        /// When the period resets (RFC 3339).
        resets_at: String,
    },
    /// A requests- or tokens-per-minute limit is reached.
    #[error("{} allows {limit} {what} per minute; retry in {retry_after_secs} s", .scope.describe())]
    RateLimited {
        /// The budget whose limit it is.
        scope: ScopeKey,
        /// `requests` or `tokens`.
        what: &'static str,
        /// The limit.
        limit: i64,
        /// Seconds until the window has room.
        retry_after_secs: u64,
    },
    /// A request with the same idempotency key is still running.
    #[error("a request with this Idempotency-Key is still in progress; retry after it finishes")]
    InFlight,
    /// The ledger could not record the reservation: refuse rather than spend blind.
    #[error("the budget ledger is unavailable, so the request was refused: {0}")]
    Unavailable(String),
}

fn period_word(period: &Period) -> &'static str {
    match period {
        Period::Daily => "day",
        Period::Weekly => "week",
        Period::Monthly => "month",
    }
}

/// `$12.34` from nanocents (rounded up to the cent).
pub fn dollars(nanocents: i64) -> String {
    let cents = cents_ceil(nanocents);
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A request to hold budget.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    /// The reservation id (a UUID), also the idempotency record's id.
    pub id: String,
    /// The team that pays.
    pub team: String,
    /// The workspace, `""` for none.
    pub workspace: String,
    /// The model, for the record.
    pub model: String,
    /// The worst-case cost.
    pub amount_nanocents: i64,
    /// Estimated tokens, for tokens-per-minute limits.
    pub estimated_tokens: i64,
    /// The caller's idempotency key and the request body's hash.
    pub idempotency: Option<(String, String)>,
}

/// A held reservation, returned by [`Ledger::reserve`].
#[derive(Debug, Clone)]
pub struct Hold {
    /// Its id.
    pub id: String,
    /// The team.
    pub team: String,
    /// The workspace or `""`.
    pub workspace: String,
    /// The amount held.
    pub amount_nanocents: i64,
    /// When it lapses (unix ms).
    pub expires_at_ms: i64,
    /// The caller's idempotency key, freed if the hold lapses.
    pub idempotency_key: Option<String>,
}

/// A response kept for idempotent replay.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// The body exactly as first sent.
    pub body: bytes::Bytes,
}

impl StoredResponse {
    /// The answer as a ledger row keeps it (a content type of `None` was JSON).
    pub fn from_row(status: i64, content_type: Option<String>, body: Vec<u8>) -> Self {
        Self {
            status: u16::try_from(status).unwrap_or(500),
            content_type: content_type.unwrap_or_else(|| "application/json".into()),
            body: body.into(),
        }
    }
}

/// What an idempotency key finds.
#[derive(Debug, Clone)]
pub enum Replay {
    /// Not seen within the retention window.
    New,
    /// Seen with the same body and finished: send this again, no charge.
    Stored(Arc<StoredResponse>),
    /// Seen with a different body.
    DifferentBody,
    /// Seen and still running.
    InFlight,
}

/// One usage record (a row of `llm_usage`).
#[derive(Debug, Clone, Default)]
pub struct UsageRecord {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The team.
    pub team: String,
    /// The workspace or `""`.
    pub workspace: String,
    /// The gateway key's id.
    pub key_id: Option<i64>,
    /// The gateway key's name (the caller).
    pub key_name: Option<String>,
    /// The provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// `chat` or `embeddings`.
    pub request_type: String,
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Actual cost.
    pub cost_nanocents: i64,
    /// Time in the gateway.
    pub latency_ms: i64,
    /// The time the gateway itself added (its whole time minus the
    /// provider's), in microseconds; `None` when no provider was called.
    pub overhead_us: Option<i64>,
    /// The status answered.
    pub status: u16,
    /// The error class, when not 2xx.
    pub error_type: Option<String>,
    /// The W3C trace id.
    pub trace_id: Option<String>,
    /// The product feature the caller named.
    pub feature: Option<String>,
    /// The caller's idempotency key.
    pub idempotency_key: Option<String>,
    /// The reservation, if one was made.
    pub reservation_id: Option<String>,
    /// The deployment that served (or was last tried).
    pub deployment: Option<String>,
    /// The model the caller asked for, when another one (a fallback) served.
    pub requested_model: Option<String>,
    /// Deployments tried (at least 1).
    pub attempts: i64,
    /// Why earlier deployments were passed over, e.g. `m/east 429`.
    pub fallbacks: Option<String>,
    /// Answered from the response cache (at no cost).
    pub cache_hit: bool,
    /// What a cache hit would have cost.
    pub saved_nanocents: i64,
    /// Guardrail findings: detectors and counts, never the text.
    pub guardrails: Option<String>,
    /// The team keeps a request log: this request's entry.
    pub log: Option<Box<RequestLog>>,
}

/// One entry of a team's request log (bodies already masked).
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    /// The request body as sent, masked (when the team keeps bodies).
    pub request_body: Option<String>,
    /// The answer, masked (when the team keeps bodies).
    pub response_body: Option<String>,
}

/// One usage record as a billing event for the observability pipeline
/// (joined with traces by its trace id).
fn billing_event(u: &UsageRecord) {
    tracing::info!(
        target: crate::audit::BILLING_TARGET,
        team = %u.team,
        workspace_id = %u.workspace,
        key_name = u.key_name.as_deref().unwrap_or(""),
        provider = %u.provider,
        model = %u.model,
        deployment = u.deployment.as_deref().unwrap_or(""),
        request_type = %u.request_type,
        input_tokens = u.input_tokens,
        output_tokens = u.output_tokens,
        cost_nanocents = u.cost_nanocents,
        saved_nanocents = u.saved_nanocents,
        cache_hit = u.cache_hit,
        status = u.status,
        error_type = u.error_type.as_deref().unwrap_or(""),
        feature = u.feature.as_deref().unwrap_or(""),
        trace_id = u.trace_id.as_deref().unwrap_or(""),
        reservation_id = u.reservation_id.as_deref().unwrap_or(""),
        "billing"
    );
}

/// A soft-threshold crossing to announce once per period.
#[derive(Debug, Clone, PartialEq)]
pub struct SoftAlert {
    /// The budget.
    pub scope: ScopeKey,
    /// The threshold in percent.
    pub percent: i64,
    /// Spend now (cents).
    pub spent_cents: i64,
    /// The limit (cents).
    pub limit_cents: i64,
    /// The period's start (unix ms).
    pub period_start_ms: i64,
}

/// One budget's figures for the current period.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeFigures {
    /// Settled spend this period.
    pub spent_nanocents: i64,
    /// Held by in-flight requests.
    pub reserved_nanocents: i64,
    /// Period start (unix ms).
    pub period_start_ms: i64,
    /// Period end = reset (unix ms).
    pub period_end_ms: i64,
}

struct Scope {
    rule: BudgetRule,
    period_start: i64,
    period_end: i64,
    settled: i64,
    reserved: i64,
    alerted_for: Option<i64>,
    window: RateWindow,
}

/// Requests and tokens per second over the last minute.
struct RateWindow {
    slots: [(i64, i64, i64); 60],
}

impl Default for RateWindow {
    fn default() -> Self {
        Self {
            slots: [(0, 0, 0); 60],
        }
    }
}

impl RateWindow {
    fn totals(&self, now_s: i64) -> (i64, i64, i64) {
        let mut requests = 0;
        let mut tokens = 0;
        let mut oldest = now_s;
        for &(second, r, t) in &self.slots {
            if second > now_s - 60 && (r > 0 || t > 0) {
                requests += r;
                tokens += t;
                oldest = oldest.min(second);
            }
        }
        (requests, tokens, oldest)
    }
    fn add(&mut self, now_s: i64, requests: i64, tokens: i64) {
        let slot = &mut self.slots[now_s.rem_euclid(60) as usize];
        if slot.0 != now_s {
            *slot = (now_s, 0, 0);
        }
        slot.1 += requests;
        slot.2 += tokens;
    }
}

#[derive(Default)]
struct State {
    scopes: HashMap<ScopeKey, Scope>,
    /// Settled spend per team → workspace → bucket start → nanocents.
    spend: HashMap<String, HashMap<String, BTreeMap<i64, i64>>>,
    holds: HashMap<String, Hold>,
    in_flight: HashMap<(String, String), String>,
    /// Finished idempotent responses not yet committed to SQLite.
    recent: HashMap<(String, String), (String, Arc<StoredResponse>)>,
}

enum Write {
    Reserve {
        hold: Hold,
        model: String,
        idempotency: Option<(String, String)>,
        created_at: i64,
        ack: oneshot::Sender<Result<(), String>>,
    },
    Grow {
        id: String,
        amount_nanocents: i64,
        ack: oneshot::Sender<Result<(), String>>,
    },
    Finish {
        id: String,
        state: &'static str,
        /// Idempotency key, request hash and the response to store.
        response: Option<(String, String, Arc<StoredResponse>)>,
        team: String,
        /// The hold's idempotency key: a new reservation reusing it must not
        /// be written before this.
        key: Option<String>,
    },
    Expire(Vec<String>),
    Usage(Box<UsageRecord>),
    Alert(SoftAlert),
    AlertDelivered {
        scope: ScopeKey,
        period_start_ms: i64,
        status: String,
    },
    KeyUsed {
        id: i64,
        at: i64,
    },
    Flush(oneshot::Sender<()>),
}

/// The ledger. Cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    state: Arc<Mutex<State>>,
    writes: mpsc::UnboundedSender<Write>,
    clock: Arc<dyn Clock>,
    tz: TimeZone,
    ttl_ms: i64,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("ttl_ms", &self.ttl_ms)
            .finish()
    }
}

/// The period of kind `period` containing `now_ms` in `tz`: `[start, end)` in
/// unix ms.
pub fn bounds(period: Period, tz: &TimeZone, now_ms: i64) -> (i64, i64) {
    let now = Timestamp::from_millisecond(now_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    match period::bounds(period, tz, now) {
        Ok((s, e)) => (s.as_millisecond(), e.as_millisecond()),
        // Outside jiff's range: a period of one day from now keeps the ledger working.
        Err(_) => (now_ms, now_ms + 24 * 3600 * 1000),
    }
}

/// `2026-12-01 00:00 CET`: a reset time as people in the configured zone read it.
pub fn local_label(ms: i64, tz: &TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| {
            t.to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_default()
}

/// RFC 3339 in the configured zone.
pub fn rfc3339(ms: i64, tz: &TimeZone) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_zoned(tz.clone()).timestamp().to_string())
        .unwrap_or_default()
}

impl State {
    fn spend_since(&self, key: &ScopeKey, from: i64, to: i64) -> i64 {
        let Some(team) = self.spend.get(&key.team) else {
            return 0;
        };
        team.iter()
            .filter(|(ws, _)| key.workspace.is_empty() || **ws == key.workspace)
            .map(|(_, buckets)| buckets.range(from..to).map(|(_, v)| *v).sum::<i64>())
            .sum()
    }

    /// Moves `key` into the period containing `now`, recomputing its spend.
    fn roll(&mut self, key: &ScopeKey, tz: &TimeZone, now: i64) {
        let Some(scope) = self.scopes.get(key) else {
            return;
        };
        if now >= scope.period_start && now < scope.period_end {
            return;
        }
        let (start, end) = bounds(scope.rule.period, tz, now);
        let settled = self.spend_since(key, start, end);
        if let Some(scope) = self.scopes.get_mut(key) {
            scope.period_start = start;
            scope.period_end = end;
            scope.settled = settled;
        }
    }

    fn applicable(&self, team: &str, workspace: &str) -> Vec<ScopeKey> {
        let mut keys = vec![ScopeKey {
            team: team.to_owned(),
            workspace: String::new(),
        }];
        if !workspace.is_empty() {
            let ws = ScopeKey {
                team: team.to_owned(),
                workspace: workspace.to_owned(),
            };
            if self.scopes.contains_key(&ws) {
                keys.push(ws);
            }
        }
        keys
    }
}

impl Ledger {
    /// Loads budgets, recent spend and held reservations from SQLite (marking
    /// lapsed ones expired) and starts the writer and the expiry sweeper.
    pub async fn start(
        pool: SqlitePool,
        tz: TimeZone,
        ttl: std::time::Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, sqlx::Error> {
        let now = clock.now_ms();
        let mut state = State::default();
        let since = now - HISTORY_MS;
        let rows = sqlx::query!(
            r#"SELECT team, workspace_id, (at / 900000) * 900000 AS "bucket!: i64", SUM(cost_nanocents) AS "cost!: i64"
               FROM llm_usage WHERE at >= ?1 GROUP BY team, workspace_id, 3"#,
            since
        )
        .fetch_all(&pool)
        .await?;
        for row in rows {
            *state
                .spend
                .entry(row.team)
                .or_default()
                .entry(row.workspace_id)
                .or_default()
                .entry(row.bucket)
                .or_default() += row.cost;
        }
        let lapsed = sqlx::query!(
            "UPDATE llm_reservations SET state = 'expired' WHERE state = 'held' AND expires_at <= ?1",
            now
        )
        .execute(&pool)
        .await?
        .rows_affected();
        if lapsed > 0 {
            tracing::info!(
                lapsed,
                "reservations left by a previous run had expired; their budget is released"
            );
        }
        let held = sqlx::query!(
            r#"SELECT id AS "id!", team, workspace_id, amount_nanocents, expires_at, idempotency_key FROM llm_reservations WHERE state = 'held'"#
        )
        .fetch_all(&pool)
        .await?;
        for row in held {
            state.holds.insert(
                row.id.clone(),
                Hold {
                    id: row.id,
                    team: row.team,
                    workspace: row.workspace_id,
                    amount_nanocents: row.amount_nanocents,
                    expires_at_ms: row.expires_at,
                    idempotency_key: row.idempotency_key,
                },
            );
        }
        let alerts = sqlx::query!("SELECT team, workspace_id, period_start FROM llm_budget_alerts")
            .fetch_all(&pool)
            .await?;
        let rules = super::load_rules(&pool).await?;
        let (writes, receiver) = mpsc::unbounded_channel();
        let ledger = Self {
            state: Arc::new(Mutex::new(state)),
            writes,
            clock,
            tz,
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
        };
        for rule in rules {
            ledger.apply_rule(rule);
        }
        {
            let mut state = ledger.lock();
            for alert in alerts {
                let key = ScopeKey {
                    team: alert.team,
                    workspace: alert.workspace_id,
                };
                if let Some(scope) = state.scopes.get_mut(&key) {
                    if scope.period_start == alert.period_start {
                        scope.alerted_for = Some(alert.period_start);
                    }
                }
            }
        }
        tokio::spawn(writer(pool, receiver, ledger.state.clone()));
        tokio::spawn(sweeper(ledger.clone()));
        Ok(ledger)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves integers, never a broken invariant worth dying for.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configured time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The ledger's clock (unix ms).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Installs or replaces a budget (after it is committed to SQLite).
    pub fn apply_rule(&self, rule: BudgetRule) {
        let key = ScopeKey {
            team: rule.team.clone(),
            workspace: rule.workspace_id.clone().unwrap_or_default(),
        };
        let now = self.clock.now_ms();
        let mut state = self.lock();
        let reserved = state
            .holds
            .values()
            .filter(|h| {
                h.team == key.team && (key.workspace.is_empty() || h.workspace == key.workspace)
            })
            .map(|h| h.amount_nanocents)
            .sum();
        let (start, end) = bounds(rule.period, &self.tz, now);
        let settled = state.spend_since(&key, start, end);
        let previous = state.scopes.remove(&key);
        let alerted_for = previous
            .as_ref()
            .and_then(|p| p.alerted_for)
            .filter(|p| *p == start);
        let window = previous.map(|p| p.window).unwrap_or_default();
        state.scopes.insert(
            key,
            Scope {
                rule,
                period_start: start,
                period_end: end,
                settled,
                reserved,
                alerted_for,
                window,
            },
        );
    }

    /// This budget's figures now, if it exists.
    pub fn figures(&self, team: &str, workspace: &str) -> Option<ScopeFigures> {
        let key = ScopeKey {
            team: team.to_owned(),
            workspace: workspace.to_owned(),
        };
        let now = self.clock.now_ms();
        let mut state = self.lock();
        state.roll(&key, &self.tz, now);
        state.scopes.get(&key).map(|s| ScopeFigures {
            spent_nanocents: s.settled,
            reserved_nanocents: s.reserved,
            period_start_ms: s.period_start,
            period_end_ms: s.period_end,
        })
    }

    /// The team budget's current period `[start, end)` (unix ms), or the last
    /// `fallback_days` up to now when the team has no budget: the default
    /// range of usage reports.
    pub fn period_or_recent(&self, team: &str, fallback_days: i64) -> (i64, i64) {
        let now = self.clock.now_ms();
        self.figures(team, "")
            .map(|f| (f.period_start_ms, f.period_end_ms))
            .unwrap_or((now - fallback_days * 86_400_000, now + 1))
    }

    /// The tightest remaining amount across the scopes of a request, in cents
    /// (rounded down), and when that budget resets.
    pub fn remaining(&self, team: &str, workspace: &str) -> Option<(i64, String)> {
        let now = self.clock.now_ms();
        let mut state = self.lock();
        let keys = state.applicable(team, workspace);
        let mut best: Option<(i64, i64)> = None;
        for key in &keys {
            state.roll(key, &self.tz, now);
            if let Some(s) = state.scopes.get(key) {
                let left = s.rule.limit_cents * NANOCENTS_PER_CENT - s.settled - s.reserved;
                if best.is_none_or(|(b, _)| left < b) {
                    best = Some((left, s.period_end));
                }
            }
        }
        best.map(|(left, end)| (left.max(0) / NANOCENTS_PER_CENT, rfc3339(end, &self.tz)))
    }

    /// The allowed models of the budgets that apply (an empty list allows all).
    pub fn allows_model(&self, team: &str, workspace: &str, model: &str) -> bool {
        let state = self.lock();
        state.applicable(team, workspace).iter().all(|key| {
            state.scopes.get(key).is_none_or(|s| {
                s.rule.allowed_models.is_empty() || s.rule.allowed_models.iter().any(|m| m == model)
            })
        })
    }

    /// What an idempotency key finds (in flight, just finished, or stored).
    pub async fn replay(
        &self,
        pool: &SqlitePool,
        team: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<Replay, LedgerError> {
        {
            let state = self.lock();
            let id = (team.to_owned(), key.to_owned());
            if let Some(hash) = state.in_flight.get(&id) {
                return Ok(if hash == request_hash {
                    Replay::InFlight
                } else {
                    Replay::DifferentBody
                });
            }
            if let Some((hash, response)) = state.recent.get(&id) {
                return Ok(if hash == request_hash {
                    Replay::Stored(response.clone())
                } else {
                    Replay::DifferentBody
                });
            }
        }
        let retention_start = self.clock.now_ms() - super::IDEMPOTENCY_RETENTION_MS;
        let row = sqlx::query!(
            r#"SELECT id AS "id!", request_hash, state, response_status, response_type, response_body, created_at
               FROM llm_reservations WHERE team = ?1 AND idempotency_key = ?2"#,
            team,
            key
        )
        .fetch_optional(pool)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read idempotency records");
            LedgerError::Unavailable("cannot read idempotency records".into())
        })?;
        let Some(row) = row else {
            return Ok(Replay::New);
        };
        if row.created_at < retention_start {
            return Ok(Replay::New);
        }
        if row.request_hash.as_deref() != Some(request_hash) {
            return Ok(Replay::DifferentBody);
        }
        match (row.state.as_str(), row.response_status, row.response_body) {
            ("held", _, _) if self.lock().holds.contains_key(&row.id) => Ok(Replay::InFlight),
            // Released here, its record not yet written (settlements are
            // committed a few milliseconds later) and nothing stored: a
            // stored answer would have been found in memory above.
            ("held", _, _) => Ok(Replay::New),
            (_, Some(status), Some(body)) => Ok(Replay::Stored(Arc::new(
                StoredResponse::from_row(status, row.response_type, body),
            ))),
            // Voided or expired without a stored answer: the first attempt failed; run it again.
            _ => Ok(Replay::New),
        }
    }

    /// Holds `request.amount_nanocents` against every applicable budget, or
    /// says which budget or rate limit refuses. The hold is committed to SQLite
    /// before this returns.
    pub async fn reserve(&self, request: ReserveRequest) -> Result<Hold, LedgerError> {
        let now = self.clock.now_ms();
        let now_s = now.div_euclid(1000);
        let hold = {
            let mut state = self.lock();
            let keys = state.applicable(&request.team, &request.workspace);
            if !state.scopes.contains_key(&keys[0]) {
                return Err(LedgerError::NoBudget(request.team.clone()));
            }
            if let Some((key, hash)) = &request.idempotency {
                let id = (request.team.clone(), key.clone());
                if state.in_flight.contains_key(&id) || state.recent.contains_key(&id) {
                    return Err(LedgerError::InFlight);
                }
                state.in_flight.insert(id, hash.clone());
            }
            let refusal = (|| {
                for key in &keys {
                    state.roll(key, &self.tz, now);
                    let Some(scope) = state.scopes.get(key) else {
                        continue;
                    };
                    let (requests, tokens, oldest) = scope.window.totals(now_s);
                    let retry_after_secs = u64::try_from((oldest + 60 - now_s).max(1)).unwrap_or(1);
                    if let Some(limit) = scope.rule.rpm_limit {
                        if requests + 1 > limit {
                            return Some(LedgerError::RateLimited {
                                scope: key.clone(),
                                what: "requests",
                                limit,
                                retry_after_secs,
                            });
                        }
                    }
                    if let Some(limit) = scope.rule.tpm_limit {
                        if tokens > 0 && tokens + request.estimated_tokens > limit {
                            return Some(LedgerError::RateLimited {
                                scope: key.clone(),
                                what: "tokens",
                                limit,
                                retry_after_secs,
                            });
                        }
                    }
                    if let Some(refusal) = self.exceeds(key, scope, request.amount_nanocents) {
                        return Some(refusal);
                    }
                }
                None
            })();
            if let Some(refusal) = refusal {
                if let Some((key, _)) = &request.idempotency {
                    state.in_flight.remove(&(request.team.clone(), key.clone()));
                }
                return Err(refusal);
            }
            for key in &keys {
                if let Some(scope) = state.scopes.get_mut(key) {
                    scope.reserved += request.amount_nanocents;
                    scope.window.add(now_s, 1, 0);
                }
            }
            let hold = Hold {
                id: request.id.clone(),
                team: request.team.clone(),
                workspace: request.workspace.clone(),
                amount_nanocents: request.amount_nanocents,
                expires_at_ms: now + self.ttl_ms,
                idempotency_key: request.idempotency.as_ref().map(|(k, _)| k.clone()),
            };
            state.holds.insert(hold.id.clone(), hold.clone());
            hold
        };
        let result = self
            .committed(|ack| Write::Reserve {
                hold: hold.clone(),
                model: request.model,
                idempotency: request.idempotency.clone(),
                created_at: now,
                ack,
            })
            .await;
        if let Err(reason) = result {
            tracing::error!(%reason, "cannot commit a reservation; refusing the request");
            self.release(&hold.id, None);
            self.free_key(&hold);
            return Err(LedgerError::Unavailable(
                "the budget ledger cannot be written".into(),
            ));
        }
        Ok(hold)
    }

    /// The refusal when holding `amount` more would cross `scope`'s blocking
    /// limit. Inclusive: reaching the limit exactly is allowed, crossing it is not.
    fn exceeds(&self, key: &ScopeKey, scope: &Scope, amount: i64) -> Option<LedgerError> {
        let limit = scope.rule.limit_cents.saturating_mul(NANOCENTS_PER_CENT);
        let committed = scope.settled + scope.reserved;
        (scope.rule.on_limit == OnLimit::Block && committed.saturating_add(amount) > limit).then(
            || LedgerError::BudgetExceeded {
                scope: key.clone(),
                period: scope.rule.period,
                limit_cents: scope.rule.limit_cents,
                committed_nanocents: committed,
                needed_nanocents: amount,
                remaining_cents: (limit - committed).max(0) / NANOCENTS_PER_CENT,
                resets_at: rfc3339(scope.period_end, &self.tz),
            },
        )
    }

    /// Sends the write `make` builds and waits until the writer has committed it.
    async fn committed(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Write,
    ) -> Result<(), String> {
        let (ack, committed) = oneshot::channel();
        match self.writes.send(make(ack)) {
            Ok(()) => committed
                .await
                .unwrap_or_else(|_| Err("the ledger writer stopped".into())),
            Err(_) => Err("the ledger writer stopped".into()),
        }
    }

    /// Raises a hold to `amount_nanocents` (a fallback to a dearer model),
    /// taking only the difference against every budget that applies,
    /// atomically, and committing it before returning; a hold already that
    /// large is left as it is. Refuses, leaving the hold unchanged, when the
    /// difference does not fit.
    pub async fn grow(&self, hold: &mut Hold, amount_nanocents: i64) -> Result<(), LedgerError> {
        let extra = amount_nanocents - hold.amount_nanocents;
        if extra <= 0 {
            return Ok(());
        }
        let now = self.clock.now_ms();
        {
            let mut state = self.lock();
            if !state.holds.contains_key(&hold.id) {
                return Err(LedgerError::Unavailable(
                    "the budget hold lapsed before the fallback".into(),
                ));
            }
            let keys = state.applicable(&hold.team, &hold.workspace);
            for key in &keys {
                state.roll(key, &self.tz, now);
                let Some(scope) = state.scopes.get(key) else {
                    continue;
                };
                if let Some(refusal) = self.exceeds(key, scope, extra) {
                    return Err(refusal);
                }
            }
            for key in &keys {
                if let Some(scope) = state.scopes.get_mut(key) {
                    scope.reserved += extra;
                }
            }
            if let Some(h) = state.holds.get_mut(&hold.id) {
                h.amount_nanocents = amount_nanocents;
            }
        }
        let result = self
            .committed(|ack| Write::Grow {
                id: hold.id.clone(),
                amount_nanocents,
                ack,
            })
            .await;
        if let Err(reason) = result {
            tracing::error!(%reason, "cannot commit a larger hold; refusing the fallback");
            let mut state = self.lock();
            let keys = state.applicable(&hold.team, &hold.workspace);
            if let Some(h) = state.holds.get_mut(&hold.id) {
                h.amount_nanocents = hold.amount_nanocents;
                for key in &keys {
                    if let Some(scope) = state.scopes.get_mut(key) {
                        scope.reserved -= extra;
                    }
                }
            }
            return Err(LedgerError::Unavailable(
                "the budget ledger cannot be written".into(),
            ));
        }
        hold.amount_nanocents = amount_nanocents;
        Ok(())
    }

    /// Removes a hold from memory, adding `actual` to settled spend when given.
    /// Returns a soft-threshold crossing if this settlement caused one.
    fn release(&self, id: &str, settle: Option<(i64, i64, &str, &str)>) -> Option<SoftAlert> {
        let now = self.clock.now_ms();
        let now_s = now.div_euclid(1000);
        let mut state = self.lock();
        let hold = state.holds.remove(id);
        let (team, workspace) = match (&hold, settle) {
            (Some(h), _) => (h.team.clone(), h.workspace.clone()),
            (None, Some((_, _, team, ws))) => (team.to_owned(), ws.to_owned()),
            (None, None) => return None,
        };
        let keys = state.applicable(&team, &workspace);
        if let Some(hold) = &hold {
            for key in &keys {
                if let Some(scope) = state.scopes.get_mut(key) {
                    scope.reserved -= hold.amount_nanocents;
                }
            }
        }
        let (actual, tokens, _, _) = settle?;
        let bucket = now - now.rem_euclid(BUCKET_MS);
        *state
            .spend
            .entry(team.clone())
            .or_default()
            .entry(workspace.clone())
            .or_default()
            .entry(bucket)
            .or_default() += actual;
        let mut alert = None;
        for key in &keys {
            state.roll(key, &self.tz, now);
            if let Some(scope) = state.scopes.get_mut(key) {
                scope.settled += actual;
                scope.window.add(now_s, 0, tokens);
                let limit = scope.rule.limit_cents.saturating_mul(NANOCENTS_PER_CENT);
                let threshold = limit / 100 * scope.rule.soft_alert_percent;
                if scope.settled >= threshold
                    && scope.alerted_for != Some(scope.period_start)
                    && alert.is_none()
                {
                    scope.alerted_for = Some(scope.period_start);
                    alert = Some(SoftAlert {
                        scope: key.clone(),
                        percent: scope.rule.soft_alert_percent,
                        spent_cents: cents_ceil(scope.settled),
                        limit_cents: scope.rule.limit_cents,
                        period_start_ms: scope.period_start,
                    });
                }
            }
        }
        alert
    }

    /// Settles a hold to its actual cost, stores the response for idempotent
    /// replay and writes the usage record. Returns a soft-threshold crossing
    /// to announce, if any.
    pub fn settle(
        &self,
        hold: &Hold,
        usage: UsageRecord,
        response: Option<(String, String, StoredResponse)>,
    ) -> Option<SoftAlert> {
        let mut usage = usage;
        // Spend counts when it settles, in memory and on disk alike.
        usage.at_ms = self.clock.now_ms();
        let tokens = usage.input_tokens + usage.output_tokens;
        let alert = self.release(
            &hold.id,
            Some((usage.cost_nanocents, tokens, &hold.team, &hold.workspace)),
        );
        let response = response.map(|(key, hash, stored)| {
            let stored = Arc::new(stored);
            let mut state = self.lock();
            let id = (hold.team.clone(), key.clone());
            state.in_flight.remove(&id);
            state.recent.insert(id, (hash.clone(), stored.clone()));
            (key, hash, stored)
        });
        if response.is_none() {
            // Charged but nothing to replay (a stream that broke off): the key is free again.
            self.free_key(hold);
        }
        let _ = self.writes.send(Write::Finish {
            id: hold.id.clone(),
            state: "settled",
            response,
            team: hold.team.clone(),
            key: hold.idempotency_key.clone(),
        });
        billing_event(&usage);
        let _ = self.writes.send(Write::Usage(Box::new(usage)));
        if let Some(alert) = &alert {
            let _ = self.writes.send(Write::Alert(alert.clone()));
        }
        alert
    }

    /// Voids a hold (the request failed before anything was charged) and
    /// writes the usage record; the idempotency key becomes free again.
    pub fn void(&self, hold: &Hold, mut usage: UsageRecord) {
        usage.at_ms = self.clock.now_ms();
        self.release(&hold.id, None);
        self.free_key(hold);
        let _ = self.writes.send(Write::Finish {
            id: hold.id.clone(),
            state: "voided",
            response: None,
            team: hold.team.clone(),
            key: hold.idempotency_key.clone(),
        });
        billing_event(&usage);
        let _ = self.writes.send(Write::Usage(Box::new(usage)));
    }

    /// Ends the "in flight" state of the hold's idempotency key, if it has one.
    fn free_key(&self, hold: &Hold) {
        if let Some(key) = &hold.idempotency_key {
            self.lock()
                .in_flight
                .remove(&(hold.team.clone(), key.clone()));
        }
    }

    /// Records a request that never reserved (refused, or unknown model).
    pub fn record(&self, mut usage: UsageRecord) {
        usage.at_ms = self.clock.now_ms();
        billing_event(&usage);
        let _ = self.writes.send(Write::Usage(Box::new(usage)));
    }

    /// Notes that a gateway key was used (written with the next batch).
    pub fn key_used(&self, id: i64, at: i64) {
        let _ = self.writes.send(Write::KeyUsed { id, at });
    }

    /// Records the outcome of a soft-alert webhook.
    pub fn alert_delivered(&self, alert: &SoftAlert, status: String) {
        let _ = self.writes.send(Write::AlertDelivered {
            scope: alert.scope.clone(),
            period_start_ms: alert.period_start_ms,
            status,
        });
    }

    /// Releases every hold whose TTL has passed; returns how many.
    pub fn expire_lapsed(&self) -> usize {
        let now = self.clock.now_ms();
        let lapsed: Vec<Hold> = {
            let state = self.lock();
            state
                .holds
                .values()
                .filter(|h| h.expires_at_ms <= now)
                .cloned()
                .collect()
        };
        for hold in &lapsed {
            tracing::warn!(reservation = %hold.id, team = %hold.team, "a reservation expired unsettled; its budget is released");
            self.release(&hold.id, None);
            self.free_key(hold);
        }
        if !lapsed.is_empty() {
            let _ = self
                .writes
                .send(Write::Expire(lapsed.iter().map(|h| h.id.clone()).collect()));
        }
        lapsed.len()
    }

    /// Holds currently in memory.
    pub fn held_count(&self) -> usize {
        self.lock().holds.len()
    }

    /// Waits until everything sent so far is committed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.writes.send(Write::Flush(ack)).is_ok() {
            let _ = done.await;
        }
    }
}

async fn sweeper(ledger: Ledger) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tick.tick().await;
        ledger.expire_lapsed();
        if ledger.writes.is_closed() {
            return;
        }
    }
}

/// The one writer: takes every queued change and commits it in one
/// transaction. If a batch fails, its changes are retried one by one so a
/// single bad row cannot refuse everyone else's reservation.
/// Where a reservation learns whether it was committed.
type Ack = oneshot::Sender<Result<(), String>>;

async fn writer(
    pool: SqlitePool,
    mut receiver: mpsc::UnboundedReceiver<Write>,
    state: Arc<Mutex<State>>,
) {
    // Reservations and growths are committed at once (a request waits for
    // them); everything else (settlements, usage, expiries) waits up to
    // DEFER so that several requests' records share one commit: fewer round
    // trips to SQLite's thread and far fewer pages written to the WAL.
    let mut urgent: Vec<Write> = Vec::with_capacity(64);
    let mut later: Vec<Write> = Vec::with_capacity(256);
    // The idempotency keys whose finishing writes are deferred.
    let mut later_keys: std::collections::HashSet<(String, String)> = Default::default();
    let mut deadline: Option<tokio::time::Instant> = None;
    let mut open = true;
    while open || !later.is_empty() {
        let mut due = !open;
        let next = match deadline {
            Some(at) if open => match tokio::time::timeout_at(at, receiver.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    due = true;
                    None
                }
            },
            _ if open => receiver.recv().await,
            _ => None,
        };
        let mut incoming = Vec::new();
        match next {
            Some(w) => incoming.push(w),
            None if !due => open = false,
            None => {}
        }
        while incoming.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(w) => incoming.push(w),
                Err(_) => break,
            }
        }
        for w in incoming {
            match &w {
                Write::Reserve {
                    hold, idempotency, ..
                } => {
                    // Reusing a key whose last holder's record is still
                    // deferred: write that first, in the same transaction.
                    if let Some((key, _)) = idempotency {
                        due |= later_keys.contains(&(hold.team.clone(), key.clone()));
                    }
                    urgent.push(w);
                }
                Write::Grow { .. } => urgent.push(w),
                Write::Flush(_) => {
                    due = true;
                    urgent.push(w);
                }
                _ => {
                    if let Write::Finish {
                        team,
                        key: Some(key),
                        ..
                    } = &w
                    {
                        later_keys.insert((team.clone(), key.clone()));
                    }
                    later.push(w);
                    deadline.get_or_insert_with(|| tokio::time::Instant::now() + DEFER);
                }
            }
        }
        due |= later.len() >= MAX_BATCH / 2 || !open;
        if urgent.is_empty() && !due {
            continue;
        }
        let mut batch = std::mem::take(&mut urgent);
        if due {
            batch.append(&mut later);
            later_keys.clear();
            deadline = None;
        }
        let outcomes: Vec<(Write, Result<(), String>)> = match commit(&pool, &batch).await {
            Ok(()) => batch.drain(..).map(|w| (w, Ok(()))).collect(),
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "ledger batch failed; retrying its writes one by one");
                // Oldest first: a deferred settlement before a reservation that reuses its key.
                batch.sort_by_key(|w| matches!(w, Write::Reserve { .. } | Write::Grow { .. }));
                let mut outcomes = Vec::with_capacity(batch.len());
                for w in batch.drain(..) {
                    let single = [w];
                    let result = commit(&pool, &single).await.map_err(|e| e.to_string());
                    let [w] = single;
                    if let Err(e) = &result {
                        tracing::error!(error = %e, "a ledger write failed");
                    }
                    outcomes.push((w, result));
                }
                outcomes
            }
        };
        let mut acks: Vec<(Ack, Result<(), String>)> = Vec::new();
        let mut flushes = Vec::new();
        let mut committed = Vec::new();
        for (w, result) in outcomes {
            match w {
                Write::Reserve { ack, .. } | Write::Grow { ack, .. } => acks.push((ack, result)),
                Write::Flush(ack) => flushes.push(ack),
                Write::Finish {
                    response: Some((key, _, stored)),
                    team,
                    ..
                } => committed.push((team, key, stored)),
                _ => {}
            }
        }
        for (ack, result) in acks {
            let _ = ack.send(result);
        }
        if !committed.is_empty() {
            // Stored responses are on disk now; the in-memory copies can go.
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            for (team, key, stored) in committed {
                let id = (team, key);
                if state
                    .recent
                    .get(&id)
                    .is_some_and(|(_, r)| Arc::ptr_eq(r, &stored))
                {
                    state.recent.remove(&id);
                }
            }
        }
        for ack in flushes {
            let _ = ack.send(());
        }
    }
}

/// Why a batch could not be committed.
#[derive(Debug, thiserror::Error)]
enum CommitError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// An idempotency key's earlier reservation is still held (the in-memory
    /// check normally refuses this first; the database is the last word).
    #[error("an idempotency key is still held by an earlier reservation")]
    KeyHeld,
    #[error("cannot encode a batch: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A batch as set-based statements: each kind of change becomes one statement
/// over a JSON array of rows (`json_each`), so a batch costs a handful of
/// round trips to SQLite's connection thread whatever its size.
#[derive(Default)]
struct BatchRows<'a> {
    reserves: Vec<serde_json::Value>,
    grows: HashMap<&'a str, i64>,
    finishes: Vec<serde_json::Value>,
    expires: Vec<&'a str>,
    usage: Vec<serde_json::Value>,
    /// Some usage rows also go to their team's request log.
    logs: bool,
    /// Rare writes (alerts, key use), one statement each.
    rest: Vec<&'a Write>,
}

impl<'a> BatchRows<'a> {
    fn of(batch: &'a [Write]) -> Self {
        use serde_json::json;
        let mut rows = Self::default();
        for w in batch {
            match w {
                Write::Reserve {
                    hold,
                    model,
                    idempotency,
                    created_at,
                    ..
                } => rows.reserves.push(json!({
                    "id": hold.id,
                    "team": hold.team,
                    "workspace": hold.workspace,
                    "model": model,
                    "amount": hold.amount_nanocents,
                    "key": idempotency.as_ref().map(|(k, _)| k),
                    "hash": idempotency.as_ref().map(|(_, h)| h),
                    "created": created_at,
                    "expires": hold.expires_at_ms,
                })),
                Write::Grow {
                    id,
                    amount_nanocents,
                    ..
                } => {
                    rows.grows.insert(id, *amount_nanocents);
                }
                Write::Finish {
                    id,
                    state,
                    response,
                    ..
                } => {
                    let stored = response.as_ref().map(|(_, _, r)| r);
                    rows.finishes.push(json!({
                        "id": id,
                        "state": state,
                        "status": stored.map(|r| r.status),
                        "type": stored.map(|r| &r.content_type),
                        // Bodies are bytes: hex in the JSON, unhex() in SQL.
                        "body": stored.map(|r| hex::encode(&r.body)),
                    }));
                }
                Write::Expire(ids) => rows.expires.extend(ids.iter().map(String::as_str)),
                Write::Usage(u) => {
                    rows.usage.push(json!({
                        "at": u.at_ms,
                        "team": u.team,
                        "workspace": u.workspace,
                        "key_id": u.key_id,
                        "key_name": u.key_name,
                        "provider": u.provider,
                        "model": u.model,
                        "request_type": u.request_type,
                        "input": u.input_tokens,
                        "output": u.output_tokens,
                        "cost": u.cost_nanocents,
                        "latency": u.latency_ms,
                        "status": u.status,
                        "error_type": u.error_type,
                        "trace_id": u.trace_id,
                        "key": u.idempotency_key,
                        "reservation": u.reservation_id,
                        "feature": u.feature,
                        "overhead": u.overhead_us,
                        "deployment": u.deployment,
                        "requested_model": u.requested_model,
                        "attempts": u.attempts.max(1),
                        "fallbacks": u.fallbacks,
                        "cache_hit": i64::from(u.cache_hit),
                        "saved": u.saved_nanocents,
                        "guardrails": u.guardrails,
                        // The team keeps a request log: the same row feeds it.
                        "log": u.log.is_some(),
                        "request_body": u.log.as_ref().and_then(|l| l.request_body.as_ref()),
                        "response_body": u.log.as_ref().and_then(|l| l.response_body.as_ref()),
                    }));
                    rows.logs |= u.log.is_some();
                }
                Write::Alert(_) | Write::AlertDelivered { .. } | Write::KeyUsed { .. } => {
                    rows.rest.push(w)
                }
                Write::Flush(_) => {}
            }
        }
        rows
    }

    fn statements(&self) -> usize {
        [
            !self.reserves.is_empty(),
            !self.grows.is_empty(),
            !self.finishes.is_empty(),
            !self.expires.is_empty(),
            !self.usage.is_empty(),
            self.logs,
        ]
        .iter()
        .filter(|x| **x)
        .count()
            + self.rest.len()
    }
}

/// Commits a batch: one statement per kind of change, in one transaction
/// (a batch that is one statement needs none: SQLite commits it atomically).
async fn commit(pool: &SqlitePool, batch: &[Write]) -> Result<(), CommitError> {
    let rows = BatchRows::of(batch);
    match rows.statements() {
        0 => Ok(()),
        1 => {
            let mut conn = pool.acquire().await?;
            apply(&mut conn, &rows).await
        }
        _ => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            apply(&mut tx, &rows).await?;
            tx.commit().await?;
            Ok(())
        }
    }
}

async fn apply(conn: &mut sqlx::SqliteConnection, rows: &BatchRows<'_>) -> Result<(), CommitError> {
    // Settlements first: a reservation below may reuse the key of one.
    if !rows.finishes.is_empty() {
        let json = serde_json::to_string(&rows.finishes)?;
        sqlx::query!(
            r#"UPDATE llm_reservations SET state = j.value ->> 'state', response_status = j.value ->> 'status',
                 response_type = j.value ->> 'type', response_body = unhex(j.value ->> 'body')
               FROM json_each(?1) AS j WHERE llm_reservations.id = j.value ->> 'id'"#,
            json
        )
        .execute(&mut *conn)
        .await?;
    }
    if !rows.expires.is_empty() {
        let json = serde_json::to_string(&rows.expires)?;
        sqlx::query!(
            r#"UPDATE llm_reservations SET state = 'expired'
               WHERE state = 'held' AND id IN (SELECT value FROM json_each(?1))"#,
            json
        )
        .execute(&mut *conn)
        .await?;
    }
    if !rows.reserves.is_empty() {
        // A key's earlier record that is no longer held (voided, expired, or
        // past the retention window: `replay` said New) gives the key back.
        // One still held must refuse the batch even when it runs without a
        // transaction, so the update sets a NULL state there: the NOT NULL
        // constraint aborts the whole statement.
        let json = serde_json::to_string(&rows.reserves)?;
        sqlx::query!(
            r#"INSERT INTO llm_reservations
               (id, team, workspace_id, model, amount_nanocents, state, idempotency_key, request_hash, created_at, expires_at)
               SELECT j.value ->> 'id', j.value ->> 'team', j.value ->> 'workspace', j.value ->> 'model',
                      j.value ->> 'amount', 'held', j.value ->> 'key', j.value ->> 'hash',
                      j.value ->> 'created', j.value ->> 'expires'
               FROM json_each(?1) AS j WHERE true
               ON CONFLICT (team, idempotency_key) WHERE idempotency_key IS NOT NULL DO UPDATE SET
                 id = excluded.id, workspace_id = excluded.workspace_id, model = excluded.model,
                 amount_nanocents = excluded.amount_nanocents,
                 state = iif(llm_reservations.state = 'held', NULL, 'held'),
                 request_hash = excluded.request_hash,
                 response_status = NULL, response_type = NULL, response_body = NULL,
                 created_at = excluded.created_at, expires_at = excluded.expires_at"#,
            json
        )
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            // SQLITE_CONSTRAINT_NOTNULL: the held key above.
            if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("1299") {
                CommitError::KeyHeld
            } else {
                CommitError::Db(e)
            }
        })?;
    }
    if !rows.grows.is_empty() {
        let grows: Vec<_> = rows
            .grows
            .iter()
            .map(|(id, amount)| serde_json::json!({"id": id, "amount": amount}))
            .collect();
        let json = serde_json::to_string(&grows)?;
        sqlx::query!(
            r#"UPDATE llm_reservations SET amount_nanocents = j.value ->> 'amount'
               FROM json_each(?1) AS j
               WHERE llm_reservations.id = j.value ->> 'id' AND llm_reservations.state = 'held'"#,
            json
        )
        .execute(&mut *conn)
        .await?;
    }
    if !rows.usage.is_empty() {
        let json = serde_json::to_string(&rows.usage)?;
        sqlx::query!(
            r#"INSERT INTO llm_usage (at, team, workspace_id, key_id, key_name, provider, model, request_type,
                 input_tokens, output_tokens, cost_nanocents, latency_ms, status, error_type, trace_id,
                 idempotency_key, reservation_id, feature, overhead_us, deployment, requested_model, attempts, fallbacks,
                 cache_hit, saved_nanocents, guardrails)
               SELECT v ->> 'at', v ->> 'team', v ->> 'workspace', v ->> 'key_id', v ->> 'key_name', v ->> 'provider',
                 v ->> 'model', v ->> 'request_type', v ->> 'input', v ->> 'output', v ->> 'cost', v ->> 'latency',
                 v ->> 'status', v ->> 'error_type', v ->> 'trace_id', v ->> 'key', v ->> 'reservation', v ->> 'feature',
                 v ->> 'overhead', v ->> 'deployment', v ->> 'requested_model', v ->> 'attempts', v ->> 'fallbacks',
                 v ->> 'cache_hit', v ->> 'saved', v ->> 'guardrails'
               FROM (SELECT value AS v FROM json_each(?1) ORDER BY key)"#,
            json
        )
        .execute(&mut *conn)
        .await?;
        if rows.logs {
            sqlx::query!(
            r#"INSERT INTO llm_request_logs (team, at, key_name, request_type, model, deployment, status, latency_ms,
                 feature, trace_id, cache_hit, guardrails, request_body, response_body)
               SELECT v ->> 'team', v ->> 'at', v ->> 'key_name', v ->> 'request_type', v ->> 'model', v ->> 'deployment',
                 v ->> 'status', v ->> 'latency', v ->> 'feature', v ->> 'trace_id', v ->> 'cache_hit', v ->> 'guardrails',
                 v ->> 'request_body', v ->> 'response_body'
               FROM (SELECT value AS v FROM json_each(?1) ORDER BY key) WHERE v ->> 'log'"#,
            json
        )
        .execute(&mut *conn)
        .await?;
        }
    }
    for w in &rows.rest {
        match w {
            Write::Alert(a) => {
                let now = crate::now_unix();
                sqlx::query!(
                    r#"INSERT OR IGNORE INTO llm_budget_alerts (team, workspace_id, period_start, spent_cents, fired_at)
                       VALUES (?1, ?2, ?3, ?4, ?5)"#,
                    a.scope.team,
                    a.scope.workspace,
                    a.period_start_ms,
                    a.spent_cents,
                    now
                )
                .execute(&mut *conn)
                .await?;
            }
            Write::AlertDelivered {
                scope,
                period_start_ms,
                status,
            } => {
                sqlx::query!(
                    "UPDATE llm_budget_alerts SET webhook_status = ?4 WHERE team = ?1 AND workspace_id = ?2 AND period_start = ?3",
                    scope.team,
                    scope.workspace,
                    period_start_ms,
                    status
                )
                .execute(&mut *conn)
                .await?;
            }
            Write::KeyUsed { id, at } => {
                sqlx::query!(
                    "UPDATE llm_gateway_keys SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2)",
                    id,
                    at
                )
                .execute(&mut *conn)
                .await?;
            }
            _ => {}
        }
    }
    Ok(())
}
