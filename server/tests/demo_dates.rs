//! The demo on hard days: whatever the date and time in the budget time zone
//! (the 1st of a month just after midnight, a Monday, 29 February, the day
//! daylight saving starts in Europe/Berlin, New Year's Eve at 23:59), the
//! demo's Budget page has spend this period, history, a projection no lower
//! than the spend, and every section the browser tests look for.

mod common;

use std::sync::Arc;

use axum::http::{header, StatusCode};
use common::*;
use paved_core::auth::TeamRole;
use paved_core::budgets::ledger::ManualClock;

const HARD_DAYS: [(&str, &str); 7] = [
    ("2026-11-30T23:30:00Z", "1 December 00:30"),
    ("2026-11-29T23:00:00Z", "Monday 30 November 00:00"),
    ("2028-02-29T11:00:00Z", "29 February 12:00"),
    (
        "2026-03-28T23:30:00Z",
        "29 March 00:30, daylight saving starts",
    ),
    (
        "2026-03-29T01:30:00Z",
        "29 March 03:30, just after the change",
    ),
    ("2026-12-31T22:59:00Z", "31 December 23:59"),
    ("2026-12-31T23:00:00Z", "1 January 00:00"),
];

#[tokio::test]
async fn the_demo_budget_page_has_this_periods_spend_on_hard_days() {
    for (instant, label) in HARD_DAYS {
        let now: jiff::Timestamp = instant.parse().unwrap();
        let app = test_app_with_clock(
            &[
                ("PAVED_DEMO", "true"),
                ("PAVED_BUDGET_TIMEZONE", "Europe/Berlin"),
            ],
            Arc::new(ManualClock::at(now.as_millisecond())),
        )
        .await;
        let cookie = app
            .session_for("lee", &[("payments", TeamRole::Lead)], &[])
            .await;

        // The data: spend this period, a projection no lower than it.
        let r = app
            .with_session(&cookie)
            .call("budget_page", "team=payments")
            .await;
        assert_status(&r, StatusCode::OK);
        let data = body_json(r).await;
        let budget = &data["board"]["budget"];
        let spent_cents = budget["spent_nanocents"].as_i64().unwrap() as f64 / 1e9;
        assert!(spent_cents > 0.0, "{label}: no spend this period");
        let projected = data["board"]["projected_cents"].as_f64().unwrap();
        assert!(
            projected >= spent_cents,
            "{label}: projected {projected} below spent {spent_cents}"
        );
        assert!(
            projected < 25_000.0 * 1.2,
            "{label}: projection {projected} cents is not sensible for a $250 month"
        );
        let today = data["board"]["today"].as_u64().unwrap() as usize;
        let days = data["board"]["days"].as_array().unwrap();
        assert!(
            days[today]["cost_cents"].as_f64().unwrap() > 0.0,
            "{label}: today has no spend on the chart"
        );
        // History before this period exists too (the weekly and daily views have it).
        let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM llm_usage WHERE at < ?1")
            .bind(budget_period_start(&data))
            .fetch_one(&app.state.core.db)
            .await
            .unwrap();
        assert!(before > 0, "{label}: no history before the period");

        // The page: every section the browser tests look for.
        let r = app
            .send(get_with("/teams/payments/budget", header::COOKIE, &cookie))
            .await;
        assert_status(&r, StatusCode::OK);
        let html = body_text(r).await;
        for needle in [
            "data-testid=\"budget-summary\"",
            "data-testid=\"spend-chart\"",
            "data-testid=\"projection\"",
            "data-testid=\"limit-line\"",
            "data-testid=\"by-model\"",
            "data-testid=\"callers\"",
            "gpt-4o-mini",
            "payments-api",
            "checkout",
        ] {
            assert!(html.contains(needle), "{label}: the page lacks {needle}");
        }
    }
}

/// The period start (unix ms) from the page data's RFC 3339 `period_start`.
fn budget_period_start(data: &serde_json::Value) -> i64 {
    let raw = data["board"]["budget"]["period_start"].as_str().unwrap();
    raw.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}
