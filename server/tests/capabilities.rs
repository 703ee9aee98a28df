//! The platform's capabilities over the real router: SLOs and error budgets
//! computed from Paved's own records (hand-computed fixtures), owners and
//! objectives declared in the catalog, a breach that notifies its owner
//! once (and again only after recovering), the registry page and the
//! Prometheus series.

mod common;

use std::sync::Arc;

use axum::http::StatusCode;
use common::tokens::*;
use common::*;
use paved_core::auth::{PlatformRole, TeamRole};
use paved_core::budgets::ledger::ManualClock;
use serde_json::{json, Value};

/// 2026-03-02T00:00:00Z.
const T0: i64 = 1_772_409_600;

const CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: llm-gateway
  annotations:
    paved.dev/capability: gateway
    paved.dev/slo-objective: "99"
    paved.dev/rollback: "Redeploy the previous image tag; prices and budgets are data and stay."
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
---
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: quick-service
  title: Quick service
  annotations:
    paved.dev/slo-objective: "80"
spec:
  owner: group:default/search
  type: service
  steps: []
"#;

/// Inserts `n` gateway calls of `model` at unix second `at` answered `status`.
async fn calls(app: &TestApp, model: &str, at: i64, status: i64, n: usize) {
    let mut tx = app.state.core.db.begin().await.unwrap();
    for _ in 0..n {
        sqlx::query(
            "INSERT INTO llm_usage (at, team, workspace_id, provider, model, request_type, input_tokens,
                                    output_tokens, cost_nanocents, latency_ms, status)
             VALUES (?1, 'payments', '', 'stub', ?2, 'chat', 1, 1, 1, 10, ?3)",
        )
        .bind(at * 1000)
        .bind(model)
        .bind(status)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Inserts a finished scaffolder task of `template` with `status`.
async fn task(app: &TestApp, template: &str, status: &str, finished: i64) {
    sqlx::query(
        "INSERT INTO scaffolder_tasks (id, template_ref, template_json, values_json, created_by, principal_json,
                                       status, created_at, finished_at)
         VALUES (?1, ?2, '{}', '{}', 'user:dana', '{}', ?3, ?4, ?4)",
    )
    .bind(format!("{template}-{status}-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
    .bind(template)
    .bind(status)
    .bind(finished)
    .execute(&app.state.core.db)
    .await
    .unwrap();
}

fn find<'a>(all: &'a Value, id: &str) -> &'a Value {
    all.as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no capability {id} in {all}"))
}

async fn notifications_of(app: &TestApp, cookie: &str) -> Vec<Value> {
    let r = app
        .with_session(cookie)
        .call("notifications_list", "")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = body_json(r).await;
    v.as_array()
        .cloned()
        .or_else(|| v["items"].as_array().cloned())
        .unwrap_or_default()
}

#[tokio::test]
async fn slos_error_budgets_and_one_notification_per_breach() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog-info.yaml");
    std::fs::write(&file, CATALOG).unwrap();
    let root = dir.path().display().to_string();
    let location = format!("file:{}", file.display());
    let clock = Arc::new(ManualClock::at(T0 * 1000));
    let app = test_app_with_clock(
        &[
            ("PAVED_CATALOG_FILE_ROOTS", root.as_str()),
            ("PAVED_CATALOG_LOCATIONS", location.as_str()),
        ],
        clock.clone(),
    )
    .await;
    let dev = app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let searcher = app
        .session_for("sid", &[("search", TeamRole::Member)], &[])
        .await;
    let pm = app
        .session_for("pat", &[], &[PlatformRole::PlatformPm])
        .await;

    // Ten days ago: 980 good and 20 failed calls (a day's outage); none recently.
    calls(&app, "stub-chat", T0 - 10 * 86_400, 200, 980).await;
    calls(&app, "stub-chat", T0 - 10 * 86_400, 502, 20).await;
    // Older than the 28-day window: never counted.
    calls(&app, "stub-chat", T0 - 40 * 86_400, 500, 500).await;
    // The template: 4 completed, 1 failed, 1 cancelled (not counted).
    for status in [
        "completed",
        "completed",
        "completed",
        "completed",
        "failed",
        "cancelled",
    ] {
        task(&app, "template:default/quick-service", status, T0 - 86_400).await;
    }

    let (status, all) = app
        .as_(PAYMENTS_DEV)
        .get("/api/outcomes/v1/capabilities")
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    // The gateway: 980/1000 = 98% against the catalog's 99% objective: the
    // budget (1% of 1000 = 10 bad) is overspent by 10, i.e. remaining −1.
    let gw = find(&all, "gateway");
    assert_eq!(gw["owner"], "payments", "declared by the catalog entity");
    assert_eq!(gw["declared_by"], "component:default/llm-gateway");
    assert_eq!(
        gw["rollback"],
        "Redeploy the previous image tag; prices and budgets are data and stay."
    );
    let slo = &gw["slos"][0];
    assert_eq!(slo["objective"], json!(0.99));
    assert_eq!(
        (slo["good"].clone(), slo["total"].clone()),
        (json!(980), json!(1000))
    );
    assert_eq!(slo["sli"], json!(0.98));
    assert!((slo["error_budget_remaining"].as_f64().unwrap() + 1.0).abs() < 1e-9);
    assert_eq!(slo["burn_rate"], Value::Null, "nothing in the last 6 hours");
    assert_eq!(slo["state"], "breached");
    assert_eq!(gw["state"], "breached");
    // The model route keeps the built-in 99% and the platform as owner.
    let model = find(&all, "model:stub-chat");
    assert_eq!(model["owner"], "platform");
    assert_eq!(model["slos"][0]["state"], "breached");
    // The golden path: 4 of 5 finished runs = 80% against its own 80%: met, budget spent.
    let path = find(&all, "golden-path:default/quick-service");
    assert_eq!(path["owner"], "search");
    let s = &path["slos"][0];
    assert_eq!(
        (s["good"].clone(), s["total"].clone()),
        (json!(4), json!(5))
    );
    assert!(s["error_budget_remaining"].as_f64().unwrap().abs() < 1e-9);
    assert_eq!(s["state"], "at_risk");
    // Nothing provisioned: no data, not a pass or a failure.
    assert_eq!(find(&all, "secrets")["state"], "no_data");
    // One capability by id (ids hold ':' and '/').
    let (status, one) = app
        .as_(PAYMENTS_DEV)
        .get("/api/outcomes/v1/capabilities/golden-path:default/quick-service")
        .await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["name"], "Golden path: Quick service");
    let (status, _) = app
        .as_(PAYMENTS_DEV)
        .get("/api/outcomes/v1/capabilities/nope")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The breach notified the owners once: the gateway's (payments) and the
    // model's (the platform team, read by PMs), however often it is checked.
    for _ in 0..3 {
        paved_core::outcomes::capabilities::alert(&app.state.core, T0)
            .await
            .unwrap();
    }
    let mine = notifications_of(&app, &dev).await;
    let breach: Vec<&Value> = mine
        .iter()
        .filter(|n| {
            n["title"]
                .as_str()
                .unwrap_or("")
                .starts_with("LLM gateway is below its SLO")
        })
        .collect();
    assert_eq!(breach.len(), 1, "{mine:?}");
    assert_eq!(breach[0]["link"], "/capabilities?id=gateway");
    assert!(breach[0]["description"]
        .as_str()
        .unwrap()
        .contains("98% over 28 days against an objective of 99%"));
    let pms = notifications_of(&app, &pm).await;
    assert!(pms.iter().any(|n| n["title"]
        .as_str()
        .unwrap_or("")
        .starts_with("Model stub-chat is below its SLO")));
    // Search owns the golden path, which is not breached: nothing for them.
    assert!(notifications_of(&app, &searcher)
        .await
        .iter()
        .all(|n| !n["title"].as_str().unwrap_or("").contains("SLO")));

    // Recovery: 6,000 good calls in the last hour make it 6980/7000 = 99.7%:
    // met, and the alert closes.
    calls(&app, "stub-chat", T0 - 3600, 200, 6000).await;
    paved_core::outcomes::capabilities::alert(&app.state.core, T0)
        .await
        .unwrap();
    let (_, all) = app
        .as_(PAYMENTS_DEV)
        .get("/api/outcomes/v1/capabilities")
        .await;
    assert_eq!(find(&all, "gateway")["slos"][0]["state"], "met");
    // A new outage in the last hours: breached again, and a fast burn.
    calls(&app, "stub-chat", T0 - 600, 503, 200).await;
    paved_core::outcomes::capabilities::alert(&app.state.core, T0)
        .await
        .unwrap();
    let (_, all) = app
        .as_(PAYMENTS_DEV)
        .get("/api/outcomes/v1/capabilities")
        .await;
    let slo = &find(&all, "gateway")["slos"][0];
    assert_eq!(slo["state"], "breached");
    // Recent: 200 bad of 6,200 = 3.2% against 1% allowed.
    assert!((slo["burn_rate"].as_f64().unwrap() - 200.0 / 6200.0 / 0.01).abs() < 1e-9);
    let mine = notifications_of(&app, &dev).await;
    assert_eq!(
        mine.iter()
            .filter(|n| n["title"]
                .as_str()
                .unwrap_or("")
                .starts_with("LLM gateway is below its SLO"))
            .count(),
        2,
        "a second breach after recovering notifies again"
    );

    // The registry page, for anyone signed in, opened at the breached capability.
    let (status, html) = app
        .with_session(&dev)
        .text("GET", "/capabilities?id=gateway", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-testid=\"capability-detail\""), "{html}");
    assert!(html.contains("Redeploy the previous image tag"));

    // The SLIs as Prometheus series.
    let (status, metrics) = app.as_(ADMIN).text("GET", "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "paved_slo_objective_ratio{capability=\"gateway\",kind=\"gateway\",owner=\"payments\",slo=\"availability\"} 0.99",
        "paved_slo_sli_ratio{capability=\"golden-path:default/quick-service\",kind=\"golden-path\",owner=\"search\",slo=\"success_rate\"} 0.8",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    promtool_check_metrics(&metrics);
}

#[tokio::test]
async fn the_gateway_added_latency_slo_counts_only_calls_that_reached_a_provider() {
    let clock = Arc::new(ManualClock::at(T0 * 1000));
    let app = test_app_with_clock(&[], clock.clone()).await;
    // Two days ago: 995 calls the gateway added 2 ms to, 5 it added 40 ms
    // to, and 50 refused before any provider was called (no overhead).
    for (overhead_us, status, n) in [
        (Some(2_000), 200, 995),
        (Some(40_000), 200, 5),
        (None, 429, 50),
    ] {
        let mut tx = app.state.core.db.begin().await.unwrap();
        for _ in 0..n {
            sqlx::query(
                "INSERT INTO llm_usage (at, team, workspace_id, provider, model, request_type, input_tokens,
                                        output_tokens, cost_nanocents, latency_ms, status, overhead_us)
                 VALUES (?1, 'payments', '', 'stub', 'stub-chat', 'chat', 1, 1, 1, 300, ?2, ?3)",
            )
            .bind((T0 - 2 * 86_400) * 1000)
            .bind(status)
            .bind(overhead_us)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let (status, all) = app
        .as_(PAYMENTS_DEV)
        .get("/api/outcomes/v1/capabilities")
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    for id in ["gateway", "model:stub-chat"] {
        let slos = find(&all, id)["slos"].as_array().unwrap().clone();
        let added = slos
            .iter()
            .find(|s| s["id"] == "added_latency")
            .unwrap_or_else(|| panic!("{id} has no added-latency SLO: {slos:?}"));
        // 995 of 1000 timed calls within 25 ms: 99.5% against 99%; half the
        // budget (10 slow calls allowed, 5 spent) is left.
        assert_eq!(
            (added["good"].clone(), added["total"].clone()),
            (json!(995), json!(1000))
        );
        assert_eq!(added["objective"], json!(0.99));
        assert!(
            (added["error_budget_remaining"].as_f64().unwrap() - 0.5).abs() < 1e-9,
            "{added}"
        );
        assert_eq!(added["state"], "met");
        // The refused calls count against nothing here and are not failures.
        let availability = slos.iter().find(|s| s["id"] == "availability").unwrap();
        assert_eq!(
            (availability["good"].clone(), availability["total"].clone()),
            (json!(1050), json!(1050))
        );
    }
    // 30 days on they have left the 28-day window.
    clock.set((T0 + 30 * 86_400) * 1000);
    let (_, all) = app
        .as_(PAYMENTS_DEV)
        .get("/api/outcomes/v1/capabilities")
        .await;
    let gw = find(&all, "gateway");
    assert_eq!(gw["slos"][1]["total"], json!(0));
    assert_eq!(gw["slos"][1]["state"], "no_data");
}
