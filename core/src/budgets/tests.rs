//! The ledger and budget rules against a real SQLite database.

use std::sync::Arc;

use sqlx::SqlitePool;

use super::ledger::{Clock, Ledger, LedgerError, ManualClock, ReserveRequest, UsageRecord};
use super::*;
use paved_shared::auth::testing;

fn lead() -> Principal {
    testing::lead("payments").named("lee")
}

const CENT: i64 = NANOCENTS_PER_CENT;

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

async fn setup(pool: &SqlitePool, clock: Arc<ManualClock>) -> Ledger {
    for team in ["payments", "search"] {
        sqlx::query("INSERT INTO teams (name, display_name, created_at) VALUES (?1, ?1, 0)")
            .bind(team)
            .execute(pool)
            .await
            .unwrap();
    }
    Ledger::start(
        pool.clone(),
        period::time_zone("Europe/Berlin").unwrap(),
        std::time::Duration::from_secs(60),
        clock,
    )
    .await
    .unwrap()
}

/// A ledger at 2026-03-15 12:00 UTC with team payments' monthly budget of
/// `limit_cents`.
async fn monthly_budget(pool: &SqlitePool, limit_cents: i64) -> Ledger {
    let ledger = setup(pool, Arc::new(ManualClock::at(ms("2026-03-15T12:00:00Z")))).await;
    set_budget(
        pool,
        &ledger,
        &lead(),
        "payments",
        "",
        input(limit_cents, Period::Monthly),
        &[],
    )
    .await
    .unwrap();
    ledger
}

fn input(limit_cents: i64, period: Period) -> BudgetInput {
    BudgetInput {
        period,
        limit_cents,
        soft_alert_percent: 80,
        on_limit: OnLimit::Block,
        allowed_models: vec![],
        rpm_limit: None,
        tpm_limit: None,
        expected_version: None,
    }
}

fn request(id: &str, amount: i64) -> ReserveRequest {
    ReserveRequest {
        id: id.into(),
        team: "payments".into(),
        workspace: String::new(),
        model: "gpt-4o-mini".into(),
        amount_nanocents: amount,
        estimated_tokens: 10,
        idempotency: None,
    }
}

fn usage(cost: i64) -> UsageRecord {
    UsageRecord {
        team: "payments".into(),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        request_type: "chat".into(),
        cost_nanocents: cost,
        status: 200,
        ..Default::default()
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_limit_is_inclusive_and_crossing_it_is_refused(pool: SqlitePool) {
    let ledger = monthly_budget(&pool, 100).await;
    // 60 + 40 reaches $1.00 exactly: allowed.
    let a = ledger.reserve(request("a", 60 * CENT)).await.unwrap();
    let b = ledger.reserve(request("b", 40 * CENT)).await.unwrap();
    // One nanocent more crosses it.
    let refused = ledger.reserve(request("c", 1)).await.unwrap_err();
    match &refused {
        LedgerError::BudgetExceeded {
            remaining_cents,
            resets_at,
            ..
        } => {
            assert_eq!(*remaining_cents, 0);
            assert_eq!(
                resets_at, "2026-03-31T22:00:00Z",
                "April 1st 00:00 in Berlin"
            );
        }
        other => panic!("expected BudgetExceeded, got {other:?}"),
    }
    assert!(refused
        .to_string()
        .contains("team payments budget of $1.00 per month"));
    // Settling below the hold frees the difference.
    ledger.settle(&a, usage(10 * CENT), None);
    ledger.void(&b, usage(0));
    assert_eq!(ledger.held_count(), 0);
    let figures = ledger.figures("payments", "").unwrap();
    assert_eq!(
        (figures.spent_nanocents, figures.reserved_nanocents),
        (10 * CENT, 0)
    );
    ledger.reserve(request("d", 90 * CENT)).await.unwrap();
    ledger.flush().await;
    let held: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM llm_reservations WHERE state = 'held'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        held, 1,
        "the held reservation is on disk before the provider is called"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn every_applicable_scope_must_admit_the_request(pool: SqlitePool) {
    let ledger = monthly_budget(&pool, 1000).await;
    set_budget(
        &pool,
        &ledger,
        &lead(),
        "payments",
        "checkout",
        input(50, Period::Daily),
        &[],
    )
    .await
    .unwrap();
    let mut req = request("w1", 50 * CENT);
    req.workspace = "checkout".into();
    ledger.reserve(req.clone()).await.unwrap();
    req.id = "w2".into();
    let refused = ledger.reserve(req).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("workspace checkout of team payments"),
        "{refused}"
    );
    // The team budget still has room for requests outside the workspace.
    ledger.reserve(request("t1", 500 * CENT)).await.unwrap();
    assert_eq!(
        ledger.figures("payments", "").unwrap().reserved_nanocents,
        550 * CENT
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn periods_reset_on_the_calendar_boundary_not_on_first_use(pool: SqlitePool) {
    // First use mid-month: the period still starts on the 1st in Berlin.
    let clock = Arc::new(ManualClock::at(ms("2026-03-31T21:59:00Z")));
    let ledger = setup(&pool, clock.clone()).await;
    let view = set_budget(
        &pool,
        &ledger,
        &lead(),
        "payments",
        "",
        input(100, Period::Monthly),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(view.period_start, "2026-02-28T23:00:00Z");
    let hold = ledger.reserve(request("a", 100 * CENT)).await.unwrap();
    ledger.settle(&hold, usage(100 * CENT), None);
    assert!(ledger.reserve(request("b", 1)).await.is_err());
    // 23:59:59 local on March 31st: still March.
    clock.set(ms("2026-03-31T21:59:59Z"));
    assert!(ledger.reserve(request("c", 1)).await.is_err());
    // Midnight in Berlin (22:00 UTC, summer time): a new period with nothing spent.
    clock.set(ms("2026-03-31T22:00:00Z"));
    let figures = ledger.figures("payments", "").unwrap();
    assert_eq!(figures.spent_nanocents, 0);
    assert_eq!(figures.period_start_ms, ms("2026-03-31T22:00:00Z"));
    ledger.reserve(request("d", 100 * CENT)).await.unwrap();
    // Spend survives a restart: a new ledger reads it back from usage records.
    ledger.flush().await;
    clock.set(ms("2026-03-31T21:30:00Z"));
    let reloaded = Ledger::start(
        pool.clone(),
        period::time_zone("Europe/Berlin").unwrap(),
        std::time::Duration::from_secs(60),
        clock.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        reloaded.figures("payments", "").unwrap().spent_nanocents,
        100 * CENT
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn reservations_left_by_a_crash_hold_budget_until_their_ttl(pool: SqlitePool) {
    let clock = Arc::new(ManualClock::at(ms("2026-03-15T12:00:00Z")));
    let ledger = setup(&pool, clock.clone()).await;
    set_budget(
        &pool,
        &ledger,
        &lead(),
        "payments",
        "",
        input(100, Period::Monthly),
        &[],
    )
    .await
    .unwrap();
    ledger
        .reserve(request("in-flight", 80 * CENT))
        .await
        .unwrap();
    // "Crash": a new ledger over the same database, 30 s later.
    clock.set(ms("2026-03-15T12:00:30Z"));
    let restarted = Ledger::start(
        pool.clone(),
        period::time_zone("Europe/Berlin").unwrap(),
        std::time::Duration::from_secs(60),
        clock.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        restarted
            .figures("payments", "")
            .unwrap()
            .reserved_nanocents,
        80 * CENT
    );
    assert!(restarted.reserve(request("x", 30 * CENT)).await.is_err());
    // After the TTL the sweep releases it.
    clock.set(ms("2026-03-15T12:01:01Z"));
    assert_eq!(restarted.expire_lapsed(), 1);
    assert_eq!(
        restarted
            .figures("payments", "")
            .unwrap()
            .reserved_nanocents,
        0
    );
    restarted.reserve(request("y", 100 * CENT)).await.unwrap();
    restarted.flush().await;
    let state: String =
        sqlx::query_scalar("SELECT state FROM llm_reservations WHERE id = 'in-flight'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, "expired");
}

#[sqlx::test(migrations = "../migrations")]
async fn alert_only_budgets_never_refuse_and_soft_alerts_fire_once(pool: SqlitePool) {
    let clock = Arc::new(ManualClock::at(ms("2026-03-15T12:00:00Z")));
    let ledger = setup(&pool, clock.clone()).await;
    let mut rule = input(100, Period::Monthly);
    rule.on_limit = OnLimit::Alert;
    set_budget(&pool, &ledger, &lead(), "payments", "", rule, &[])
        .await
        .unwrap();
    let a = ledger.reserve(request("a", 79 * CENT)).await.unwrap();
    assert!(ledger.settle(&a, usage(79 * CENT), None).is_none());
    let b = ledger.reserve(request("b", 500 * CENT)).await.unwrap();
    let alert = ledger.settle(&b, usage(CENT), None).expect("80% crossed");
    assert_eq!((alert.spent_cents, alert.percent), (80, 80));
    let c = ledger.reserve(request("c", CENT)).await.unwrap();
    assert!(
        ledger.settle(&c, usage(CENT), None).is_none(),
        "once per period"
    );
}

#[sqlx::test(migrations = "../migrations")]
async fn requests_per_minute_are_limited_with_a_retry_time(pool: SqlitePool) {
    let clock = Arc::new(ManualClock::at(ms("2026-03-15T12:00:00Z")));
    let ledger = setup(&pool, clock.clone()).await;
    let mut rule = input(100, Period::Monthly);
    rule.rpm_limit = Some(2);
    set_budget(&pool, &ledger, &lead(), "payments", "", rule, &[])
        .await
        .unwrap();
    ledger.reserve(request("a", 1)).await.unwrap();
    clock.set(ms("2026-03-15T12:00:10Z"));
    ledger.reserve(request("b", 1)).await.unwrap();
    match ledger.reserve(request("c", 1)).await.unwrap_err() {
        LedgerError::RateLimited {
            what,
            retry_after_secs,
            ..
        } => {
            assert_eq!(what, "requests");
            assert_eq!(retry_after_secs, 50);
        }
        other => panic!("{other:?}"),
    }
    clock.set(ms("2026-03-15T12:01:00Z"));
    ledger.reserve(request("d", 1)).await.unwrap();
}

#[sqlx::test(migrations = "../migrations")]
async fn budgets_are_versioned_audited_and_only_leads_change_them(pool: SqlitePool) {
    let clock = Arc::new(ManualClock::at(ms("2026-03-15T12:00:00Z")));
    let ledger = setup(&pool, clock.clone()).await;
    let member = testing::member("payments").named("lee");
    let other_lead = testing::lead("search").named("lee");
    let pm = testing::pm().named("lee");
    for who in [&member, &other_lead, &pm] {
        let err = set_budget(
            &pool,
            &ledger,
            who,
            "payments",
            "",
            input(100, Period::Monthly),
            &[],
        )
        .await
        .unwrap_err();
        assert_eq!(err.status_code(), 403, "{err}");
    }
    set_budget(
        &pool,
        &ledger,
        &lead(),
        "payments",
        "",
        input(100, Period::Monthly),
        &[],
    )
    .await
    .unwrap();
    let mut change = input(250, Period::Weekly);
    change.expected_version = Some(1);
    let view = set_budget(&pool, &ledger, &lead(), "payments", "", change.clone(), &[])
        .await
        .unwrap();
    assert_eq!((view.version, view.limit_cents), (2, 250));
    // A stale version conflicts.
    let stale = set_budget(&pool, &ledger, &lead(), "payments", "", change, &[])
        .await
        .unwrap_err();
    assert_eq!(stale.status_code(), 409);
    // Unknown models are refused by name.
    let mut models = input(100, Period::Monthly);
    models.allowed_models = vec!["gpt-4o-mini".into(), "made-up".into()];
    let err = set_budget(
        &pool,
        &ledger,
        &lead(),
        "payments",
        "",
        models,
        &["gpt-4o-mini".into()],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("made-up has no price"), "{err}");
    let history = history(&pool, &member, "payments").await.unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0]
        .before
        .as_deref()
        .unwrap()
        .contains("\"limit_cents\":100"));
    assert!(history[0].after.contains("\"limit_cents\":250"));
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'budget.set'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(audited, 2);
    // Members and PMs read; other teams do not.
    budget(&pool, &ledger, &member, "payments", "")
        .await
        .unwrap();
    budget(&pool, &ledger, &pm, "payments", "").await.unwrap();
    assert_eq!(
        budget(&pool, &ledger, &other_lead, "payments", "")
            .await
            .unwrap_err()
            .status_code(),
        403
    );
}

#[test]
fn budget_input_names_every_bad_field() {
    let err = BudgetInput::from_json(&serde_json::json!({
        "period": "yearly", "limit_cents": -5, "soft_alert_percent": 0, "on_limit": "panic",
        "rpm_limit": 0, "allowed_models": "gpt"
    }))
    .unwrap_err();
    let text = err.to_string();
    for field in [
        "period",
        "limit_cents",
        "soft_alert_percent",
        "on_limit",
        "rpm_limit",
        "allowed_models",
    ] {
        assert!(text.contains(field), "{field} missing from {text}");
    }
    let ok = BudgetInput::from_json(&serde_json::json!({"period": "weekly", "limit_cents": 5000}))
        .unwrap();
    assert_eq!((ok.soft_alert_percent, ok.on_limit), (80, OnLimit::Block));
}

#[test]
fn system_clock_is_now() {
    let now = ledger::SystemClock.now_ms();
    assert!(now > ms("2025-01-01T00:00:00Z"));
}

#[sqlx::test(migrations = "../migrations")]
async fn idempotency_keys_are_in_flight_until_settled_then_replayed_or_freed(pool: SqlitePool) {
    let ledger = monthly_budget(&pool, 100).await;
    let mut with_key = request("a", CENT);
    with_key.idempotency = Some(("k1".into(), "hash-1".into()));
    let hold = ledger.reserve(with_key.clone()).await.unwrap();
    assert!(matches!(
        ledger
            .replay(&pool, "payments", "k1", "hash-1")
            .await
            .unwrap(),
        ledger::Replay::InFlight
    ));
    assert!(matches!(
        ledger
            .replay(&pool, "payments", "k1", "other")
            .await
            .unwrap(),
        ledger::Replay::DifferentBody
    ));
    // A duplicate that raced past the replay check is refused too.
    let mut duplicate = with_key.clone();
    duplicate.id = "a2".into();
    assert_eq!(
        ledger.reserve(duplicate).await.unwrap_err(),
        LedgerError::InFlight
    );
    // Settled without a stored answer (a stream that broke off): charged, and the key is free.
    ledger.settle(&hold, usage(CENT), None);
    ledger.flush().await;
    assert!(matches!(
        ledger
            .replay(&pool, "payments", "k1", "hash-1")
            .await
            .unwrap(),
        ledger::Replay::New
    ));
    // With a stored answer: replayed, from memory and then from SQLite.
    let mut again = request("b", CENT);
    again.idempotency = Some(("k2".into(), "hash-2".into()));
    let hold = ledger.reserve(again).await.unwrap();
    let stored = ledger::StoredResponse {
        status: 200,
        content_type: "application/json".into(),
        body: bytes::Bytes::from_static(b"{\"ok\":true}"),
    };
    ledger.settle(
        &hold,
        usage(CENT),
        Some(("k2".into(), "hash-2".into(), stored)),
    );
    for _ in 0..2 {
        match ledger
            .replay(&pool, "payments", "k2", "hash-2")
            .await
            .unwrap()
        {
            ledger::Replay::Stored(r) => assert_eq!(&r.body[..], b"{\"ok\":true}"),
            other => panic!("{other:?}"),
        }
        ledger.flush().await;
    }
}

/// Instants that have broken date-relative demo data: each in Europe/Berlin.
const HARD_DAYS: [&str; 8] = [
    "2026-11-30T23:30:00Z", // 1 December 00:30 local, the 1st of a month
    "2026-11-29T23:00:00Z", // Monday 30 November 00:00 local exactly
    "2026-11-30T10:00:00Z", // a Monday morning
    "2028-02-29T11:00:00Z", // 29 February
    "2026-03-28T23:30:00Z", // 29 March 00:30, the day daylight saving starts
    "2026-03-29T01:30:00Z", // 29 March 03:30, just after the clocks went forward
    "2026-12-31T22:59:00Z", // 31 December 23:59
    "2026-12-31T23:00:00Z", // 1 January 00:00 exactly
];

#[test]
fn demo_calls_fill_every_current_period_and_the_history_before_it() {
    let tz = period::time_zone("Europe/Berlin").unwrap();
    for day in HARD_DAYS {
        let now = ms(day);
        let calls = demo_calls(&tz, now).unwrap();
        assert!(
            calls.iter().all(|c| c.at_ms <= now),
            "{day}: a call in the future"
        );
        for p in [Period::Daily, Period::Weekly, Period::Monthly] {
            let (start, end) =
                super::period::bounds(p, &tz, jiff::Timestamp::from_millisecond(now).unwrap())
                    .unwrap();
            let (start, end) = (start.as_millisecond(), end.as_millisecond());
            let inside = calls
                .iter()
                .filter(|c| c.at_ms >= start && c.at_ms < end)
                .count();
            let before = calls.iter().filter(|c| c.at_ms < start).count();
            assert!(inside >= 3, "{day}: {p:?} period holds {inside} calls");
            assert!(before >= 3, "{day}: nothing before the {p:?} period");
        }
        // Three calls on each day, one day per local date.
        let mut dates: Vec<_> = calls
            .iter()
            .map(|c| {
                jiff::Timestamp::from_millisecond(c.at_ms)
                    .unwrap()
                    .to_zoned(tz.clone())
                    .date()
            })
            .collect();
        dates.dedup();
        assert_eq!(
            dates.len(),
            DEMO_HISTORY_DAYS as usize + 1,
            "{day}: {dates:?}"
        );
    }
}

#[sqlx::test(migrations = "../migrations")]
async fn the_demo_month_has_spend_and_a_sensible_projection_on_hard_days(pool: SqlitePool) {
    let tz = period::time_zone("Europe/Berlin").unwrap();
    for (i, day) in HARD_DAYS.iter().enumerate() {
        // A fresh set of tables per instant: the seed runs only once per database.
        sqlx::query("DELETE FROM llm_budget_versions")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM llm_budgets")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM llm_usage")
            .execute(&pool)
            .await
            .unwrap();
        if i == 0 {
            for team in ["payments", "search"] {
                sqlx::query(
                    "INSERT INTO teams (name, display_name, created_at) VALUES (?1, ?1, 0)",
                )
                .bind(team)
                .execute(&pool)
                .await
                .unwrap();
            }
        }
        let now = ms(day);
        seed_demo(&pool, &tz, now).await.unwrap();
        let clock = Arc::new(ManualClock::at(now));
        let ledger = Ledger::start(
            pool.clone(),
            tz.clone(),
            std::time::Duration::from_secs(60),
            clock,
        )
        .await
        .unwrap();
        let figures = ledger.figures("payments", "").unwrap();
        assert!(figures.spent_nanocents > 0, "{day}: the month is empty");
        let elapsed = (now - figures.period_start_ms).max(3_600_000) as f64;
        let length = (figures.period_end_ms - figures.period_start_ms) as f64;
        let projected = figures.spent_nanocents as f64 * (length / elapsed);
        let limit = 25_000.0 * CENT as f64;
        assert!(
            projected > 0.3 * limit && projected < 1.2 * limit,
            "{day}: projection {} of a {} limit",
            projected / CENT as f64,
            limit / CENT as f64
        );
    }
}

/// The writer commits a batch as one statement per kind of change: every
/// reservation, growth, settlement (with its stored bytes), void, usage
/// record and request log lands exactly once, and a key another reservation
/// still holds in the database refuses only the request that reused it.
#[sqlx::test(migrations = "../migrations")]
async fn batched_writes_land_exactly_and_a_held_key_refuses_only_its_request(pool: SqlitePool) {
    let ledger = monthly_budget(&pool, 1_000).await;
    // A key settled earlier (no stored answer) is free to be used again.
    let mut first = request("old", CENT);
    first.idempotency = Some(("reused".into(), "h-old".into()));
    let old = ledger.reserve(first).await.unwrap();
    ledger.settle(&old, usage(CENT), None);
    ledger.flush().await;
    // A held row this process does not know about (another writer's), whose
    // key a new request reuses.
    sqlx::query(
        "INSERT INTO llm_reservations (id, team, model, amount_nanocents, state, idempotency_key, request_hash, created_at, expires_at)
         VALUES ('foreign', 'payments', 'm', 1, 'held', 'taken', 'h', 0, 9999999999999)",
    )
    .execute(&pool)
    .await
    .unwrap();

    let reserves = (0..40).map(|i| {
        let mut r = request(&format!("r{i}"), CENT);
        r.idempotency = match i {
            0 => Some(("reused".into(), "h-new".into())),
            1 => Some(("taken".into(), "h".into())),
            i if i % 3 == 0 => Some((format!("k{i}"), format!("h{i}"))),
            _ => None,
        };
        ledger.reserve(r)
    });
    let results = futures_util::future::join_all(reserves).await;
    assert!(
        matches!(results[1], Err(LedgerError::Unavailable(_))),
        "{:?}",
        results[1]
    );
    let mut holds: Vec<_> = results
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("reservation {i}: {e:?}")))
        .collect();
    assert_eq!(holds.len(), 39);
    ledger.grow(&mut holds[2], 3 * CENT).await.unwrap();
    let body = bytes::Bytes::from_static(b"\x00\xff{\"bytes\":\"not utf-8\"}");
    for (i, hold) in holds.iter().enumerate() {
        let mut u = usage(CENT);
        u.reservation_id = Some(hold.id.clone());
        u.feature = Some(format!("f{i}"));
        u.cache_hit = i == 5;
        if i % 4 == 0 {
            u.log = Some(Box::new(ledger::RequestLog {
                request_body: Some(format!("request {i}")),
                response_body: None,
            }));
        }
        match i % 3 {
            0 => {
                let stored = hold.idempotency_key.clone().map(|k| {
                    (
                        k,
                        "h".to_string(),
                        ledger::StoredResponse {
                            status: 201,
                            content_type: "application/json".into(),
                            body: body.clone(),
                        },
                    )
                });
                ledger.settle(hold, u, stored);
            }
            1 => ledger.void(hold, u),
            _ => {
                ledger.settle(hold, u, None);
            }
        }
    }
    ledger.flush().await;

    type Row = (String, String, i64, Option<i64>, Option<Vec<u8>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, state, amount_nanocents, response_status, response_body FROM llm_reservations
         WHERE id LIKE 'r%' ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 39);
    for (i, hold) in holds.iter().enumerate() {
        let row = rows.iter().find(|r| r.0 == hold.id).unwrap();
        let state = if i % 3 == 1 { "voided" } else { "settled" };
        assert_eq!(row.1, state, "{}", hold.id);
        let stored = i % 3 == 0 && hold.idempotency_key.is_some();
        assert_eq!(row.3, stored.then_some(201), "{}", hold.id);
        assert_eq!(row.4.as_deref(), stored.then_some(&body[..]), "{}", hold.id);
    }
    let grown = rows.iter().find(|r| r.0 == holds[2].id).unwrap();
    assert_eq!(grown.2, 3 * CENT);
    // The reused key now names the new reservation; the foreign one is untouched.
    let by_key: Vec<(String, String)> = sqlx::query_as(
        "SELECT idempotency_key, id FROM llm_reservations WHERE idempotency_key IN ('reused', 'taken') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        by_key,
        vec![
            ("reused".to_string(), "r0".to_string()),
            ("taken".to_string(), "foreign".to_string())
        ]
    );
    let (usage_rows, features, hits): (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT feature), SUM(cache_hit) FROM llm_usage WHERE reservation_id LIKE 'r%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((usage_rows, features, hits), (39, 39, 1));
    let logs: Vec<String> =
        sqlx::query_scalar("SELECT request_body FROM llm_request_logs ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        logs,
        (0..39)
            .filter(|i| i % 4 == 0)
            .map(|i| format!("request {i}"))
            .collect::<Vec<_>>()
    );
    // Nothing is left held but the foreign row, and memory agrees with disk.
    let held: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM llm_reservations WHERE state = 'held'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(held, 1);
    assert_eq!(ledger.held_count(), 0);
}

/// Settlements are committed a few milliseconds after the answer; a retry
/// that reuses the key of a voided request meanwhile is a new request, and
/// its reservation lands after the old record, in the same commit.
#[sqlx::test(migrations = "../migrations")]
async fn a_key_freed_a_moment_ago_is_reusable_before_its_record_is_written(pool: SqlitePool) {
    let ledger = monthly_budget(&pool, 100).await;
    for round in 0..3 {
        let mut r = request(&format!("try{round}"), CENT);
        r.idempotency = Some(("retry-me".into(), "hash".into()));
        assert!(matches!(
            ledger
                .replay(&pool, "payments", "retry-me", "hash")
                .await
                .unwrap(),
            ledger::Replay::New
        ));
        let hold = ledger.reserve(r).await.unwrap();
        // Voided (the provider failed): no flush before the next attempt.
        ledger.void(&hold, usage(0));
    }
    ledger.flush().await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, state FROM llm_reservations WHERE idempotency_key = 'retry-me'")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows, vec![("try2".to_string(), "voided".to_string())]);
    let records: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM llm_usage WHERE reservation_id IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(records, 3);
}

/// Gateway keys are created, listed, authenticated and revoked alike on
/// SQLite and PostgreSQL, each change with its audit entry.
#[tokio::test]
async fn gateway_keys_work_alike_on_both_backends() {
    use paved_store::Db;
    let Some((sqlite, postgres)) = crate::db::both_backends("keys").await else {
        return;
    };
    let mut seen = vec![];
    for db in [Db::Sqlite(&sqlite), Db::Postgres(&postgres)] {
        crate::db::run(
            db,
            "INSERT INTO teams (name, display_name, created_at) VALUES ('payments', 'Payments', 0)",
        )
        .await;
        let created = keys::create(db, &lead(), "payments", " ci bot ", Some("checkout"))
            .await
            .unwrap();
        let value = secrecy::ExposeSecret::expose_secret(&created.value).to_owned();
        assert!(value.starts_with(keys::GATEWAY_KEY_PREFIX));
        let listed = keys::list(db, &lead(), "payments").await.unwrap();
        assert_eq!(listed, vec![created.info.clone()]);
        assert_eq!(listed[0].name, "ci bot");
        assert_eq!(listed[0].workspace_id.as_deref(), Some("checkout"));
        let cache = keys::KeyCache::default();
        let who = cache.authenticate(db, &value, 0).await.unwrap().unwrap();
        assert_eq!(
            (who.team.as_str(), who.workspace.as_str(), who.name.as_str()),
            ("payments", "checkout", "ci bot")
        );
        assert_eq!(
            cache.authenticate(db, "pvg_unknown", 0).await.unwrap(),
            None
        );
        // A member may look but not create; an unknown team is named.
        let member = testing::member("payments");
        assert!(matches!(
            keys::create(db, &member, "payments", "x", None).await,
            Err(CoreError::Forbidden(_))
        ));
        assert_eq!(keys::list(db, &member, "payments").await.unwrap().len(), 1);
        let ghost = testing::lead("ghost");
        assert!(matches!(
            keys::create(db, &ghost, "ghost", "x", None).await,
            Err(CoreError::NotFound(_))
        ));
        // Another process (a replica) has the key cached.
        let elsewhere = keys::KeyCache::default();
        assert!(elsewhere
            .authenticate(db, &value, 0)
            .await
            .unwrap()
            .is_some());
        keys::revoke(db, &cache, &lead(), "payments", created.id)
            .await
            .unwrap();
        // Refused at once here; there once its entry is a second old.
        assert_eq!(cache.authenticate(db, &value, 1).await.unwrap(), None);
        assert!(elsewhere
            .authenticate(db, &value, 999)
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            elsewhere
                .authenticate(db, &value, keys::KEY_CACHE_TTL_MS)
                .await
                .unwrap(),
            None
        );
        // Revoking again changes nothing; another team's key is not found.
        keys::revoke(db, &cache, &lead(), "payments", created.id)
            .await
            .unwrap();
        assert!(matches!(
            keys::revoke(db, &cache, &lead(), "payments", created.id + 100).await,
            Err(CoreError::NotFound(_))
        ));
        let audit = crate::audit::list(db, 0, 10).await.unwrap();
        let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["gateway_key.revoke", "gateway_key.create"]);
        let revoked = keys::list(db, &lead(), "payments").await.unwrap();
        assert!(revoked[0].revoked_at.is_some());
        seen.push(revoked[0].name.clone());
    }
    assert_eq!(seen, ["ci bot", "ci bot"]);
}

/// Budget rules and their history are kept alike on SQLite and PostgreSQL:
/// versions, optimistic concurrency, workspace budgets, the audit entry.
#[tokio::test]
async fn budget_rules_are_kept_alike_on_both_backends() {
    use paved_store::Db;
    let Some((sqlite, postgres)) = crate::db::both_backends("rules").await else {
        return;
    };
    // The ledger itself (in memory, on SQLite) only receives the rules here.
    let scratch = SqlitePool::connect("sqlite::memory:").await.unwrap();
    crate::db::MIGRATOR.run(&scratch).await.unwrap();
    let priced = vec!["gpt-4o-mini".to_owned()];
    let mut seen = vec![];
    for (db, ledger_pool) in [
        (Db::Sqlite(&sqlite), &sqlite),
        (Db::Postgres(&postgres), &scratch),
    ] {
        crate::db::run(
            db,
            "INSERT INTO teams (name, display_name, created_at) VALUES ('payments', 'Payments', 0)",
        )
        .await;
        let clock = Arc::new(ManualClock::at(ms("2026-03-15T12:00:00Z")));
        let ledger = Ledger::start(
            ledger_pool.clone(),
            period::time_zone("Europe/Berlin").unwrap(),
            std::time::Duration::from_secs(60),
            clock,
        )
        .await
        .unwrap();
        // A workspace budget needs the team's first.
        assert!(matches!(
            set_budget(
                db,
                &ledger,
                &lead(),
                "payments",
                "checkout",
                input(100, Period::Daily),
                &priced
            )
            .await,
            Err(CoreError::Invalid {
                field: "workspace_id",
                ..
            })
        ));
        let first = set_budget(
            db,
            &ledger,
            &lead(),
            "payments",
            "",
            input(5_000, Period::Monthly),
            &priced,
        )
        .await
        .unwrap();
        assert_eq!(first.version, 1);
        let mut change = input(7_500, Period::Weekly);
        change.expected_version = Some(1);
        change.allowed_models = priced.clone();
        change.rpm_limit = Some(60);
        let second = set_budget(
            db,
            &ledger,
            &lead(),
            "payments",
            "",
            change.clone(),
            &priced,
        )
        .await
        .unwrap();
        assert_eq!(second.version, 2);
        // Sent against version 1 again: refused, nothing written.
        assert!(matches!(
            set_budget(db, &ledger, &lead(), "payments", "", change, &priced).await,
            Err(CoreError::Conflict(_))
        ));
        set_budget(
            db,
            &ledger,
            &lead(),
            "payments",
            "checkout",
            input(100, Period::Daily),
            &priced,
        )
        .await
        .unwrap();
        let views = team_budgets(db, &ledger, &lead(), "payments")
            .await
            .unwrap();
        let one = budget(db, &ledger, &lead(), "payments", "checkout")
            .await
            .unwrap();
        let history = history(db, &lead(), "payments").await.unwrap();
        let versions: Vec<(Option<String>, i64)> = history
            .iter()
            .map(|h| (h.workspace_id.clone(), h.version))
            .collect();
        assert_eq!(
            versions,
            [(Some("checkout".into()), 1), (None, 2), (None, 1)],
            "newest first"
        );
        let audit = crate::audit::list(db, 0, 10).await.unwrap();
        assert_eq!(audit.total, 3);
        // The ledger reloads the same rules from this backend.
        let mut rules = load_rules(db).await.unwrap();
        rules.sort_by(|a, b| a.workspace_id.cmp(&b.workspace_id));
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].allowed_models, priced);
        assert_eq!(rules[0].rpm_limit, Some(60));
        assert_eq!(rules[0].period, Period::Weekly);
        seen.push((views, one, versions, rules));
    }
    assert_eq!(seen[0], seen[1]);
}

/// The price table is seeded, edited and read alike on SQLite and PostgreSQL.
#[tokio::test]
async fn prices_are_kept_alike_on_both_backends() {
    use paved_store::Db;
    let Some((sqlite, postgres)) = crate::db::both_backends("prices").await else {
        return;
    };
    let admin = testing::admin();
    let mut seen = vec![];
    for db in [Db::Sqlite(&sqlite), Db::Postgres(&postgres)] {
        let seeded = prices::seed_if_empty(db).await.unwrap();
        assert!(seeded > 10, "the shipped list");
        assert_eq!(prices::seed_if_empty(db).await.unwrap(), 0, "only once");
        let book = prices::PriceBook::default();
        // An admin's price for a seeded model replaces it; a new one is added.
        let seeded_model = prices::list_all(db).await.unwrap()[0].clone();
        prices::set_price(
            db,
            &book,
            &admin,
            &seeded_model.provider,
            &seeded_model.model,
            "1.50",
            "6",
        )
        .await
        .unwrap();
        prices::set_price(db, &book, &admin, "local", "llama-3", "0.1", "0.2")
            .await
            .unwrap();
        let price = book.get("local", "llama-3").unwrap();
        assert_eq!(price.input_millicents_per_mtok, 10_000);
        assert_eq!(price.output_millicents_per_mtok, 20_000);
        assert!(matches!(
            prices::set_price(db, &book, &lead(), "local", "x", "1", "1").await,
            Err(CoreError::Forbidden(_))
        ));
        prices::remove_price(db, &book, &admin, "local", "llama-3")
            .await
            .unwrap();
        assert!(book.get("local", "llama-3").is_none());
        assert!(matches!(
            prices::remove_price(db, &book, &admin, "local", "llama-3").await,
            Err(CoreError::NotFound(_))
        ));
        let all = prices::list_all(db).await.unwrap();
        assert_eq!(all.len(), seeded);
        let changed = all
            .iter()
            .find(|p| p.provider == seeded_model.provider && p.model == seeded_model.model)
            .unwrap();
        assert_eq!(changed.input_millicents_per_mtok, 150_000);
        assert_ne!(changed.updated_by, "seed");
        let audit = crate::audit::list(db, 0, 10).await.unwrap();
        let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions.len(), 3);
        assert!(actions.contains(&"price.remove"));
        let order: Vec<(String, String, i64)> = all
            .into_iter()
            .map(|p| (p.provider, p.model, p.output_millicents_per_mtok))
            .collect();
        seen.push(order);
    }
    assert_eq!(seen[0], seen[1], "same prices in the same order");
}
