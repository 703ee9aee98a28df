//! The budget ledger shared by several replicas on one PostgreSQL database.
//! Each replica is a `SharedLedger` with its own connection pool, as separate
//! processes would be; they share the test's clock.

use std::sync::Arc;

use futures_util::future::join_all;
use jiff::tz::TimeZone;
use paved_core::budgets::ledger::{
    Clock, Hold, LedgerError, ManualClock, Replay, ReserveRequest, StoredResponse,
};
use paved_core::budgets::money::NANOCENTS_PER_CENT;
use paved_core::budgets::period::Period;
use paved_core::budgets::{BudgetRule, OnLimit};
use paved_pg::ledger::{Finished, SharedLedger};
use paved_pg::testing;

const TTL: std::time::Duration = std::time::Duration::from_secs(300);
/// 2026-03-18 12:00 UTC, a Wednesday in mid-March.
const START_MS: i64 = 1_773_835_200_000;

fn rule(team: &str, workspace: Option<&str>, limit_cents: i64) -> BudgetRule {
    BudgetRule {
        team: team.into(),
        workspace_id: workspace.map(Into::into),
        period: Period::Monthly,
        limit_cents,
        soft_alert_percent: 80,
        on_limit: OnLimit::Block,
        allowed_models: vec![],
        rpm_limit: None,
        tpm_limit: None,
        version: 1,
        updated_by: "test".into(),
        updated_at: 0,
    }
}

fn request(team: &str, workspace: &str, amount: i64, key: Option<&str>) -> ReserveRequest {
    ReserveRequest {
        id: uuid::Uuid::new_v4().to_string(),
        team: team.into(),
        workspace: workspace.into(),
        model: "gpt-4o-mini".into(),
        amount_nanocents: amount,
        estimated_tokens: 100,
        idempotency: key.map(|k| (k.to_owned(), "body-hash".to_owned())),
    }
}

struct Fleet {
    url: String,
    clock: Arc<ManualClock>,
    replicas: Vec<SharedLedger>,
}

/// `n` replicas on a fresh database, each with its own pool.
async fn fleet(n: usize) -> Option<Fleet> {
    let (url, first) = testing::fresh_pool("ledger", 8).await?;
    let clock = Arc::new(ManualClock::at(START_MS));
    let mut replicas = vec![];
    for i in 0..n {
        let pool = if i == 0 {
            first.clone()
        } else {
            paved_pg::connect(&url, 8).await.expect("replica connects")
        };
        replicas.push(SharedLedger::new(
            pool,
            TimeZone::UTC,
            TTL,
            clock.clone() as Arc<dyn Clock>,
            &format!("replica-{i}"),
        ));
    }
    Some(Fleet {
        url,
        clock,
        replicas,
    })
}

const CENT: i64 = NANOCENTS_PER_CENT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_admit_exactly_what_the_budget_allows() {
    let Some(fleet) = fleet(3).await else { return };
    // 50 requests' worst case fits, the 51st does not.
    fleet.replicas[0]
        .apply_rule(&rule("payments", None, 50))
        .await
        .unwrap();
    let attempts = (0..600).map(|i| {
        let ledger = fleet.replicas[i % 3].clone();
        async move {
            let result = ledger.reserve(request("payments", "", CENT, None)).await;
            (i % 3, result)
        }
    });
    let results = join_all(attempts).await;
    let mut held: Vec<(usize, Hold)> = vec![];
    for (replica, result) in results {
        match result {
            Ok(hold) => held.push((replica, hold)),
            Err(LedgerError::BudgetExceeded {
                limit_cents,
                needed_nanocents,
                ..
            }) => {
                assert_eq!(limit_cents, 50);
                assert_eq!(needed_nanocents, CENT);
            }
            Err(other) => panic!("unexpected refusal: {other}"),
        }
    }
    assert_eq!(held.len(), 50, "exactly the budget's worth is held");
    // Every request costs its worst case: spend reaches the limit exactly.
    join_all(held.iter().map(|(replica, hold)| {
        let ledger = fleet.replicas[*replica].clone();
        async move {
            let (finished, _) = ledger.settle(hold, CENT, 0, None).await.unwrap();
            assert_eq!(finished, Finished::Finished);
        }
    }))
    .await;
    for ledger in &fleet.replicas {
        let figures = ledger.figures("payments", "").await.unwrap().unwrap();
        assert_eq!(figures.spent_nanocents, 50 * CENT);
        assert_eq!(figures.reserved_nanocents, 0);
    }
    // Settling again changes nothing.
    let (again, _) = fleet.replicas[1]
        .settle(&held[0].1, CENT, 0, None)
        .await
        .unwrap();
    assert_eq!(again, Finished::Already);
    let figures = fleet.replicas[2]
        .figures("payments", "")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(figures.spent_nanocents, 50 * CENT);
    assert!(matches!(
        fleet.replicas[2]
            .reserve(request("payments", "", 1, None))
            .await,
        Err(LedgerError::BudgetExceeded { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replicas_holds_expire_and_are_counted_by_the_others() {
    let Some(mut fleet) = fleet(3).await else {
        return;
    };
    fleet.replicas[0]
        .apply_rule(&rule("search", None, 50))
        .await
        .unwrap();
    // Replica 2 holds 20 cents, then dies (its connections close) before settling.
    for _ in 0..20 {
        fleet.replicas[2]
            .reserve(request("search", "", CENT, None))
            .await
            .unwrap();
    }
    let dead = fleet.replicas.pop().unwrap();
    drop(dead);
    // Meanwhile the others get the other 30 and no more.
    let mut live = vec![];
    for i in 0..40 {
        if let Ok(hold) = fleet.replicas[i % 2]
            .reserve(request("search", "", CENT, None))
            .await
        {
            live.push((i % 2, hold));
        }
    }
    assert_eq!(live.len(), 30);
    // A sweep before the time-to-live releases nothing.
    assert_eq!(fleet.replicas[0].expire_lapsed().await.unwrap(), 0);
    fleet
        .clock
        .set(START_MS + i64::try_from(TTL.as_millis()).unwrap() + 1);
    // Each hold is released once, by whichever replica sweeps first.
    let (a, b) = tokio::join!(
        fleet.replicas[0].expire_lapsed(),
        fleet.replicas[1].expire_lapsed()
    );
    assert_eq!(a.unwrap() + b.unwrap(), 50);
    let figures = fleet.replicas[1]
        .figures("search", "")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(figures.reserved_nanocents, 0);
    assert_eq!(figures.spent_nanocents, 0);
    // A live replica that was only slow still charges what its provider
    // produced, once, without releasing the hold a second time.
    let (replica, late) = &live[0];
    let (finished, _) = fleet.replicas[*replica]
        .settle(late, CENT / 2, 0, None)
        .await
        .unwrap();
    assert_eq!(finished, Finished::Late);
    let (again, _) = fleet.replicas[1 - replica]
        .settle(late, CENT / 2, 0, None)
        .await
        .unwrap();
    assert_eq!(again, Finished::Already);
    let figures = fleet.replicas[0]
        .figures("search", "")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(figures.spent_nanocents, CENT / 2);
    assert_eq!(figures.reserved_nanocents, 0);
    // The released budget is available again to every replica.
    let mut again = 0;
    for i in 0..60 {
        if fleet.replicas[i % 2]
            .reserve(request("search", "", CENT, None))
            .await
            .is_ok()
        {
            again += 1;
        }
    }
    assert_eq!(again, 49, "50 cents less the half cent charged");
    assert!(!fleet.url.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_is_held_once_across_replicas() {
    let Some(fleet) = fleet(3).await else { return };
    fleet.replicas[0]
        .apply_rule(&rule("checkout", None, 1_000))
        .await
        .unwrap();
    let attempts = (0..30).map(|i| {
        let ledger = fleet.replicas[i % 3].clone();
        async move {
            ledger
                .reserve(request("checkout", "", CENT, Some("retry-1")))
                .await
        }
    });
    let results = join_all(attempts).await;
    let held: Vec<&Hold> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(held.len(), 1, "one request runs under the key");
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| *e == LedgerError::InFlight));
    let figures = fleet.replicas[2]
        .figures("checkout", "")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        figures.reserved_nanocents, CENT,
        "refused ones hold nothing"
    );
    // Another team may use the same key.
    fleet.replicas[0]
        .apply_rule(&rule("growth", None, 1_000))
        .await
        .unwrap();
    fleet.replicas[1]
        .reserve(request("growth", "", CENT, Some("retry-1")))
        .await
        .unwrap();
    // Once finished (voided: it failed), the key may run again, on any replica.
    let hold = held[0].clone();
    assert_eq!(
        fleet.replicas[1].void(&hold).await.unwrap(),
        Finished::Finished
    );
    let stored = StoredResponse {
        status: 200,
        content_type: "application/json".into(),
        body: bytes::Bytes::from_static(b"{\"ok\":true}"),
    };
    let rerun = fleet.replicas[2]
        .reserve(request("checkout", "", CENT, Some("retry-1")))
        .await
        .unwrap();
    fleet.replicas[2]
        .settle(&rerun, CENT / 4, 0, Some(&stored))
        .await
        .unwrap();
    let figures = fleet.replicas[0]
        .figures("checkout", "")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(figures.spent_nanocents, CENT / 4);
    assert_eq!(figures.reserved_nanocents, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_grows_a_hold_only_when_the_difference_fits_fleet_wide() {
    let Some(fleet) = fleet(2).await else { return };
    fleet.replicas[0]
        .apply_rule(&rule("ml", None, 50))
        .await
        .unwrap();
    let mut a = fleet.replicas[0]
        .reserve(request("ml", "", 30 * CENT, None))
        .await
        .unwrap();
    fleet.replicas[1]
        .reserve(request("ml", "", 15 * CENT, None))
        .await
        .unwrap();
    // 30 + 15 + 10 > 50: refused, the hold unchanged.
    let refused = fleet.replicas[0].grow(&mut a, 40 * CENT).await;
    assert!(
        matches!(refused, Err(LedgerError::BudgetExceeded { needed_nanocents, .. }) if needed_nanocents == 10 * CENT)
    );
    assert_eq!(a.amount_nanocents, 30 * CENT);
    // 30 + 15 + 5 = 50: fits exactly.
    fleet.replicas[0].grow(&mut a, 35 * CENT).await.unwrap();
    assert_eq!(a.amount_nanocents, 35 * CENT);
    let figures = fleet.replicas[1].figures("ml", "").await.unwrap().unwrap();
    assert_eq!(figures.reserved_nanocents, 50 * CENT);
    // Settling releases the grown amount.
    fleet.replicas[1]
        .settle(&a, 20 * CENT, 0, None)
        .await
        .unwrap();
    let figures = fleet.replicas[1].figures("ml", "").await.unwrap().unwrap();
    assert_eq!(figures.reserved_nanocents, 15 * CENT);
    assert_eq!(figures.spent_nanocents, 20 * CENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_budget_and_its_teams_both_hold() {
    let Some(fleet) = fleet(2).await else { return };
    fleet.replicas[0]
        .apply_rule(&rule("data", None, 100))
        .await
        .unwrap();
    fleet.replicas[0]
        .apply_rule(&rule("data", Some("etl"), 10))
        .await
        .unwrap();
    let mut etl = 0;
    for i in 0..30 {
        if fleet.replicas[i % 2]
            .reserve(request("data", "etl", CENT, None))
            .await
            .is_ok()
        {
            etl += 1;
        }
    }
    assert_eq!(etl, 10, "the workspace's own limit");
    let refusal = fleet.replicas[1]
        .reserve(request("data", "etl", CENT, None))
        .await
        .unwrap_err();
    match refusal {
        LedgerError::BudgetExceeded { scope, .. } => assert_eq!(scope.workspace, "etl"),
        other => panic!("{other}"),
    }
    // The rest of the team's budget is for other workspaces.
    let mut other = 0;
    for i in 0..100 {
        if fleet.replicas[i % 2]
            .reserve(request("data", "reports", CENT, None))
            .await
            .is_ok()
        {
            other += 1;
        }
    }
    assert_eq!(other, 90);
    let team = fleet.replicas[0]
        .figures("data", "")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(team.reserved_nanocents, 100 * CENT);
    // A team without a budget is refused by name.
    assert_eq!(
        fleet.replicas[0]
            .reserve(request("nobody", "", CENT, None))
            .await
            .unwrap_err(),
        LedgerError::NoBudget("nobody".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_period_starts_at_its_boundary_and_a_lagging_clock_never_moves_it_back() {
    let Some(fleet) = fleet(2).await else { return };
    fleet.replicas[0]
        .apply_rule(&rule("web", None, 10))
        .await
        .unwrap();
    for _ in 0..10 {
        let hold = fleet.replicas[0]
            .reserve(request("web", "", CENT, None))
            .await
            .unwrap();
        fleet.replicas[0]
            .settle(&hold, CENT, 0, None)
            .await
            .unwrap();
    }
    let march = fleet.replicas[0].figures("web", "").await.unwrap().unwrap();
    assert_eq!(march.spent_nanocents, 10 * CENT);
    assert!(fleet.replicas[1]
        .reserve(request("web", "", CENT, None))
        .await
        .is_err());
    // April 1st, 00:00 UTC: a new month.
    let april = 1_775_001_600_000;
    assert_eq!(march.period_end_ms, april);
    fleet.clock.set(april);
    let hold = fleet.replicas[1]
        .reserve(request("web", "", CENT, None))
        .await
        .unwrap();
    fleet.replicas[1]
        .settle(&hold, CENT, 0, None)
        .await
        .unwrap();
    // A replica whose clock still reads March counts against April's row.
    let lagging = SharedLedger::new(
        paved_pg::connect(&fleet.url, 2).await.unwrap(),
        TimeZone::UTC,
        TTL,
        Arc::new(ManualClock::at(april - 1_000)) as Arc<dyn Clock>,
        "lagging",
    );
    let hold = lagging
        .reserve(request("web", "", CENT, None))
        .await
        .unwrap();
    lagging.settle(&hold, CENT, 0, None).await.unwrap();
    let now = fleet.replicas[0].figures("web", "").await.unwrap().unwrap();
    assert_eq!(now.period_start_ms, april);
    assert_eq!(now.spent_nanocents, 2 * CENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soft_alert_is_raised_once_across_the_fleet() {
    let Some(fleet) = fleet(3).await else { return };
    fleet.replicas[0]
        .apply_rule(&rule("alerts", None, 100))
        .await
        .unwrap();
    let mut holds = vec![];
    for i in 0..90 {
        holds.push((
            i % 3,
            fleet.replicas[i % 3]
                .reserve(request("alerts", "", CENT, None))
                .await
                .unwrap(),
        ));
    }
    let alerts = join_all(holds.iter().map(|(r, hold)| {
        let ledger = fleet.replicas[*r].clone();
        async move { ledger.settle(hold, CENT, 0, None).await.unwrap().1 }
    }))
    .await;
    let raised: Vec<_> = alerts.into_iter().flatten().collect();
    assert_eq!(raised.len(), 1, "one alert at 80% for the whole fleet");
    assert_eq!(raised[0].percent, 80);
    assert!(raised[0].spent_cents >= 80);
    assert_eq!(raised[0].limit_cents, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_apply_each_migration_once() {
    let Some(url) = testing::fresh_database("migrate").await else {
        return;
    };
    let starts = (0..3).map(|_| paved_pg::connect(&url, 2));
    for pool in join_all(starts).await {
        pool.expect("every replica starts");
    }
    let pool = paved_pg::connect(&url, 1).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(applied, paved_pg::MIGRATOR.iter().count() as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_minute_limits_hold_fleet_wide() {
    let Some(fleet) = fleet(3).await else { return };
    let mut limited = rule("chat", None, 100_000);
    limited.rpm_limit = Some(30);
    limited.tpm_limit = Some(1_000);
    fleet.replicas[0].apply_rule(&limited).await.unwrap();
    let attempts = (0..100).map(|i| {
        let ledger = fleet.replicas[i % 3].clone();
        async move { ledger.reserve(request("chat", "", CENT, None)).await }
    });
    let results = join_all(attempts).await;
    let held: Vec<Hold> = results.iter().filter_map(|r| r.clone().ok()).collect();
    assert_eq!(held.len(), 30, "30 requests per minute across the fleet");
    for refusal in results.iter().filter_map(|r| r.as_ref().err()) {
        match refusal {
            LedgerError::RateLimited {
                what,
                limit,
                retry_after_secs,
                ..
            } => {
                assert_eq!(*what, "requests");
                assert_eq!(*limit, 30);
                assert_eq!(*retry_after_secs, 60, "the window's oldest second is now");
            }
            other => panic!("unexpected refusal: {other}"),
        }
    }
    // A refused request holds nothing.
    let figures = fleet.replicas[1]
        .figures("chat", "")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(figures.reserved_nanocents, 30 * CENT);
    // Tokens settle into the window: 30 × 30 = 900 of 1,000.
    for (i, hold) in held.iter().enumerate() {
        fleet.replicas[i % 3]
            .settle(hold, CENT, 30, None)
            .await
            .unwrap();
    }
    // A minute later the requests have left the window, 40 s later not yet.
    fleet.clock.set(START_MS + 40_000);
    assert!(matches!(
        fleet.replicas[2]
            .reserve(request("chat", "", CENT, None))
            .await,
        Err(LedgerError::RateLimited {
            retry_after_secs: 20,
            ..
        })
    ));
    fleet.clock.set(START_MS + 60_000);
    // The settled tokens (at START) have left as well: a request estimated
    // at 200 tokens fits.
    let mut big = request("chat", "", CENT, None);
    big.estimated_tokens = 200;
    let hold = fleet.replicas[2].reserve(big).await.unwrap();
    fleet.replicas[0]
        .settle(&hold, CENT, 950, None)
        .await
        .unwrap();
    // 950 tokens in the window: one estimated at 100 more is refused.
    match fleet.replicas[1]
        .reserve(request("chat", "", CENT, None))
        .await
    {
        Err(LedgerError::RateLimited { what, limit, .. }) => {
            assert_eq!(what, "tokens");
            assert_eq!(limit, 1_000);
        }
        other => panic!("expected a tokens-per-minute refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_kept_on_one_replica_is_replayed_by_another() {
    let Some(fleet) = fleet(2).await else { return };
    fleet.replicas[0]
        .apply_rule(&rule("docs", None, 100))
        .await
        .unwrap();
    let (a, b) = (&fleet.replicas[0], &fleet.replicas[1]);
    assert!(matches!(
        b.replay("docs", "k-1", "body-hash").await.unwrap(),
        Replay::New
    ));
    let hold = a
        .reserve(request("docs", "", CENT, Some("k-1")))
        .await
        .unwrap();
    assert!(matches!(
        b.replay("docs", "k-1", "body-hash").await.unwrap(),
        Replay::InFlight
    ));
    assert!(matches!(
        b.replay("docs", "k-1", "another-body").await.unwrap(),
        Replay::DifferentBody
    ));
    let stored = StoredResponse {
        status: 200,
        content_type: "application/json".into(),
        body: bytes::Bytes::from_static(b"{\"id\":\"chatcmpl-1\"}"),
    };
    a.settle(&hold, CENT / 2, 12, Some(&stored)).await.unwrap();
    match b.replay("docs", "k-1", "body-hash").await.unwrap() {
        Replay::Stored(answer) => {
            assert_eq!(answer.status, 200);
            assert_eq!(answer.body, stored.body);
        }
        other => panic!("expected the stored answer, got {other:?}"),
    }
    // Outside the retention window the key is new again.
    fleet
        .clock
        .set(START_MS + paved_core::budgets::IDEMPOTENCY_RETENTION_MS + 1);
    assert!(matches!(
        b.replay("docs", "k-1", "body-hash").await.unwrap(),
        Replay::New
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_teams_workspaces_settles_and_sweeps_account_exactly() {
    let Some(fleet) = fleet(3).await else { return };
    let teams = ["t-a", "t-b", "t-c", "t-d"];
    for team in teams {
        fleet.replicas[0]
            .apply_rule(&rule(team, None, 1_000_000))
            .await
            .unwrap();
        fleet.replicas[1]
            .apply_rule(&rule(team, Some("ws"), 1_000_000))
            .await
            .unwrap();
    }
    // Reservations, settlements, voids and sweeps for several teams and
    // workspaces at once, on every replica: batches lock their budgets in
    // one order, so none deadlocks, and every figure adds up.
    let work = (0..900usize).map(|i| {
        let ledger = fleet.replicas[i % 3].clone();
        let team = teams[(i * 7) % teams.len()];
        let workspace = if i % 2 == 0 { "ws" } else { "" };
        async move {
            if i % 50 == 0 {
                ledger.expire_lapsed().await.unwrap();
            }
            let hold = ledger
                .reserve(request(team, workspace, 3 * CENT, None))
                .await
                .unwrap();
            if i % 5 == 0 {
                ledger.void(&hold).await.unwrap();
                (team, workspace, 0)
            } else {
                let cost = i64::try_from(i % 3 + 1).unwrap() * CENT;
                ledger.settle(&hold, cost, 10, None).await.unwrap();
                (team, workspace, cost)
            }
        }
    });
    let done = join_all(work).await;
    for team in teams {
        let charged: i64 = done.iter().filter(|d| d.0 == team).map(|d| d.2).sum();
        let in_ws: i64 = done
            .iter()
            .filter(|d| d.0 == team && d.1 == "ws")
            .map(|d| d.2)
            .sum();
        let figures = fleet.replicas[2].figures(team, "").await.unwrap().unwrap();
        assert_eq!(figures.spent_nanocents, charged, "team {team}");
        assert_eq!(figures.reserved_nanocents, 0, "team {team}");
        let ws = fleet.replicas[2]
            .figures(team, "ws")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(ws.spent_nanocents, in_ws, "workspace of {team}");
        assert_eq!(ws.reserved_nanocents, 0);
    }
    assert_eq!(fleet.replicas[0].held_count().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_and_its_workspace_each_raise_their_alert_once() {
    let Some(fleet) = fleet(2).await else { return };
    fleet.replicas[0]
        .apply_rule(&rule("ops", None, 100))
        .await
        .unwrap();
    fleet.replicas[0]
        .apply_rule(&rule("ops", Some("etl"), 50))
        .await
        .unwrap();
    let mut holds = vec![];
    for i in 0..50 {
        holds.push((
            i % 2,
            fleet.replicas[i % 2]
                .reserve(request("ops", "etl", CENT, None))
                .await
                .unwrap(),
        ));
    }
    // Settled together, so a replica finishes many in one call.
    let alerts = join_all(holds.iter().map(|(r, hold)| {
        let ledger = fleet.replicas[*r].clone();
        async move { ledger.settle(hold, CENT, 1, None).await.unwrap().1 }
    }))
    .await;
    let mut raised: Vec<(String, i64)> = alerts
        .into_iter()
        .flatten()
        .map(|a| (a.scope.workspace, a.limit_cents))
        .collect();
    raised.sort();
    // The workspace crosses 80% of 50 cents; the team 80% of 100 is not reached (50).
    assert_eq!(raised, [("etl".to_owned(), 50)]);
    // 30 more cents in another workspace take the team past 80 cents.
    let mut more = vec![];
    for _ in 0..30 {
        more.push(
            fleet.replicas[1]
                .reserve(request("ops", "", CENT, None))
                .await
                .unwrap(),
        );
    }
    let alerts = join_all(more.iter().map(|hold| {
        let ledger = fleet.replicas[0].clone();
        async move { ledger.settle(hold, CENT, 1, None).await.unwrap().1 }
    }))
    .await;
    let raised: Vec<(String, i64)> = alerts
        .into_iter()
        .flatten()
        .map(|a| (a.scope.workspace, a.limit_cents))
        .collect();
    assert_eq!(raised, [(String::new(), 100)]);
    let team = fleet.replicas[1].figures("ops", "").await.unwrap().unwrap();
    assert_eq!(team.spent_nanocents, 80 * CENT);
    assert_eq!(team.reserved_nanocents, 0);
}
