//! Adoption and the platform home over the real router: activity recorded
//! once per person and day, weekly trends placed in the right week, every
//! team's AI cost per day, and who may read them.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use common::tokens::*;
use common::*;
use paved_core::auth::{PlatformRole, TeamRole};
use paved_core::budgets::ledger::ManualClock;
use serde_json::json;

/// 2026-03-04T12:00:00Z, a Wednesday (its week starts Monday 2026-03-02).
const T0: i64 = 1_772_625_600;

async fn usage(app: &TestApp, team: &str, at: i64, cost_cents: i64, n: usize) {
    for _ in 0..n {
        sqlx::query(
            "INSERT INTO llm_usage (at, team, workspace_id, provider, model, request_type, input_tokens,
                                    output_tokens, cost_nanocents, latency_ms, status)
             VALUES (?1, ?2, '', 'stub', 'stub-chat', 'chat', 1, 1, ?3, 10, 200)",
        )
        .bind(at * 1000)
        .bind(team)
        .bind(cost_cents * 1_000_000_000)
        .execute(&app.state.core.db)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn adoption_counts_people_weeks_and_teams_and_only_platform_people_read_it() {
    let clock = Arc::new(ManualClock::at(T0 * 1000));
    let app = test_app_with_clock(&[], clock.clone()).await;
    let dana = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let sid = app
        .session_for("sid", &[("search", TeamRole::Member)], &[])
        .await;
    let pm = app
        .session_for("pat", &[], &[PlatformRole::PlatformPm])
        .await;

    // Dana uses Paved three times today and once eight days ago; Sid once, 20 days ago.
    for _ in 0..3 {
        assert_eq!(
            app.with_session(&dana).get("/api/v1/me").await.0,
            StatusCode::OK
        );
    }
    clock.set((T0 - 8 * 86_400) * 1000);
    app.with_session(&dana).get("/api/v1/me").await;
    clock.set((T0 - 20 * 86_400) * 1000);
    app.with_session(&sid).get("/api/v1/me").await;
    clock.set(T0 * 1000);
    app.with_session(&pm).get("/api/v1/me").await;
    // Activity is written off the request path: wait for the rows.
    let rows = || async {
        sqlx::query_as::<_, (i64, i64)>("SELECT user_id, day FROM user_activity ORDER BY day")
            .fetch_all(&app.state.core.db)
            .await
            .unwrap()
    };
    for _ in 0..50 {
        if rows().await.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let days: Vec<i64> = rows().await.iter().map(|r| r.1).collect();
    let today = T0 / 86_400;
    // One row per person and day, however many requests.
    assert_eq!(days, vec![today - 20, today - 8, today, today]);

    // Gateway calls: 3 this week (Monday onwards), 2 last week, 1 outside the 30-day team window.
    usage(&app, "payments", T0 - 86_400, 100, 3).await;
    usage(&app, "payments", T0 - 5 * 86_400, 50, 2).await;
    usage(&app, "search", T0 - 40 * 86_400, 1000, 1).await;

    let (status, a) = app.with_session(&pm).get("/api/outcomes/v1/adoption").await;
    assert_eq!(status, StatusCode::OK, "{a}");
    assert_eq!(a["teams_total"], json!(2));
    assert_eq!(a["people_total"], json!(3));
    // In the last 7 days: Dana and the PM; in 30: Sid too.
    assert_eq!(a["weekly_active"], json!(2));
    assert_eq!(a["monthly_active"], json!(3));
    let weeks = a["weeks"].as_array().unwrap();
    assert_eq!(weeks.len(), 12);
    let this = &weeks[11];
    assert_eq!(this["week"], "2026-03-02");
    assert_eq!(this["gateway_requests"], json!(3));
    assert_eq!(this["gateway_cost_cents"], json!(300.0));
    assert_eq!(this["active_people"], json!(2));
    assert_eq!(weeks[10]["week"], "2026-02-23");
    assert_eq!(weeks[10]["gateway_requests"], json!(2));
    assert_eq!(weeks[10]["active_people"], json!(1), "Dana, eight days ago");

    // The platform home: each team's AI cost over 30 days, per day.
    let r = app.with_session(&pm).call("platform_home_data", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let home = body_json(r).await;
    let teams = home["teams"].as_array().unwrap();
    let payments = teams.iter().find(|t| t["team"] == "payments").unwrap();
    assert_eq!(payments["ai_cost_cents"], json!(400.0));
    assert_eq!(payments["gateway_requests"], json!(5));
    let daily = payments["ai_cost_daily"].as_array().unwrap();
    assert_eq!(daily.len(), 30);
    assert_eq!(daily[28], json!(300.0), "yesterday");
    assert_eq!(daily[24], json!(100.0), "five days ago");
    let search = teams.iter().find(|t| t["team"] == "search").unwrap();
    assert_eq!(
        search["ai_cost_cents"],
        json!(0.0),
        "40 days ago is outside"
    );

    // Teams come a page of 50 at a time, sorted on the server.
    let before = home["teams_total"].as_u64().unwrap();
    for i in 0..60 {
        sqlx::query("INSERT INTO teams (name, display_name, created_at) VALUES (?1, ?1, 0)")
            .bind(format!("zz-team-{i:02}"))
            .execute(&app.state.core.db)
            .await
            .unwrap();
    }
    // The home's numbers are kept for PAVED_DASHBOARD_REFRESH_SECONDS (30 by
    // default): the new teams show once that has passed.
    let kept = body_json(app.with_session(&pm).call("platform_home_data", "").await).await;
    assert_eq!(kept["teams_total"].as_u64().unwrap(), before);
    clock.set((T0 + 30) * 1000);
    let r = app
        .with_session(&pm)
        .call("platform_home_data", "sort=team&page=2")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body_json(r).await;
    assert_eq!(page["teams_total"].as_u64().unwrap(), before + 60);
    assert_eq!(
        (page["page"].clone(), page["sort"].clone()),
        (json!(2), json!("team"))
    );
    let names: Vec<&str> = page["teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["team"].as_str().unwrap())
        .collect();
    assert_eq!(names.len() as u64, before + 60 - 50);
    assert_eq!(names.last(), Some(&"zz-team-59"));
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
    // A page past the end is the last one; an unknown column sorts by AI cost.
    let r = app
        .with_session(&pm)
        .call("platform_home_data", "sort=bogus&page=99")
        .await;
    let last = body_json(r).await;
    assert_eq!(
        (last["page"].clone(), last["sort"].clone()),
        (json!(2), json!("ai_cost"))
    );
    let first = body_json(app.with_session(&pm).call("platform_home_data", "").await).await;
    assert_eq!(first["teams"].as_array().unwrap().len(), 50);
    assert_eq!(
        first["teams"][0]["team"], "payments",
        "the biggest AI spender first"
    );

    // A team's own page shows its row; other teams are refused.
    let r = app
        .with_session(&dana)
        .call("team_experience", "team=payments")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let row = body_json(r).await;
    assert_eq!(row["ai_cost_cents"], json!(400.0));
    assert_eq!(row["members"], json!(1));
    assert_eq!(row["nps"], serde_json::Value::Null, "no survey yet");
    let r = app
        .with_session(&sid)
        .call("team_experience", "team=payments")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A team only the catalog knows (nobody from it has signed in): an empty
    // row, not a missing page.
    let r = app
        .with_session(&pm)
        .call("team_experience", "team=catalog-only")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let row = body_json(r).await;
    assert_eq!(
        (row["team"].clone(), row["members"].clone()),
        (json!("catalog-only"), json!(0))
    );
    assert_eq!(row["ai_cost_daily"].as_array().unwrap().len(), 30);

    // Developers, leads and service tokens without the role are refused.
    let (status, _) = app
        .with_session(&dana)
        .get("/api/outcomes/v1/adoption")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .as_(PAYMENTS_LEAD)
        .get("/api/outcomes/v1/adoption")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let r = app.with_session(&sid).call("platform_home_data", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (status, _) = app.as_(ADMIN).get("/api/outcomes/v1/adoption").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_lead_sees_the_budget_burn_failing_secrets_and_delivery_of_their_team() {
    let clock = Arc::new(ManualClock::at(T0 * 1000));
    let app = test_app_with_clock(&[], clock.clone()).await;
    let lee = app
        .session_for("lee", &[("payments", TeamRole::Lead)], &[])
        .await;
    let sid = app
        .session_for("sid", &[("search", TeamRole::Member)], &[])
        .await;
    // Before any budget: the card says so.
    let glance = body_json(
        app.with_session(&lee)
            .call("lead_glance", "team=payments")
            .await,
    )
    .await;
    assert_eq!(glance["budget"], serde_json::Value::Null, "{glance}");
    let (status, body) = app
        .as_(PAYMENTS_LEAD)
        .put(
            "/api/budgets/v1/teams/payments",
            json!({"period": "monthly", "limit_cents": 10000, "soft_alert_percent": 80, "on_limit": "block",
                   "allowed_models": [], "rpm_limit": null, "tpm_limit": null}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sqlx::query(
        "INSERT INTO secret_access (team, holder, policy_name, last_attempt_at, last_error)
         VALUES ('payments', 'payments-api', 'payments-api', ?1, 'permission denied'),
                ('payments', 'ledger', 'ledger', ?1, NULL),
                ('search', 'indexer', 'indexer', ?1, 'permission denied')",
    )
    .bind(T0)
    .execute(&app.state.core.db)
    .await
    .unwrap();

    let r = app
        .with_session(&lee)
        .call("lead_glance", "team=payments")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let glance = body_json(r).await;
    assert_eq!(glance["team"], "payments");
    assert_eq!(glance["budget"]["limit_cents"], json!(10000), "{glance}");
    assert_eq!(glance["budget"]["spent_cents"], json!(0.0));
    assert_eq!(glance["budget"]["period"], "per month");
    assert_eq!(
        glance["secrets_failing"],
        json!(1),
        "search's failure is not payments'"
    );
    assert_eq!(
        glance["dora"]["deployment_frequency"]["deployments"],
        json!(0)
    );
    assert!(
        glance["dora"]["previous"].is_object(),
        "the 30 days before, to compare"
    );

    // Another team's member may not read it.
    let r = app
        .with_session(&sid)
        .call("lead_glance", "team=payments")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
