//! Delivery outcomes over the real router: events from every source as it
//! sends them (GitHub's payloads from npm `@octokit/webhooks-examples`,
//! GitLab's and DevLake's documented examples in `fixtures/events/`),
//! verified and idempotent; a monorepo scenario whose five keys are worked
//! out by hand; and who may see what.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::tokens::{ADMIN, PAYMENTS_DEV, PAYMENTS_LEAD, SEARCH_DEV};
use common::*;
use paved_core::auth::{PlatformRole, TeamRole};
use serde_json::{json, Value};

const GITHUB_SECRET: &str = "whsec-outcomes-7d2f1a9c";
const GITLAB_TOKEN: &str = "glwt-outcomes-4b8e6c02";

const CATALOG: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    github.com/project-slug: acme/shop
    paved.dev/source-path: services/checkout
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: cart
  annotations:
    github.com/project-slug: acme/shop
    paved.dev/source-path: services/cart
spec:
  type: service
  lifecycle: production
  owner: group:default/payments
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: hello-world
  annotations:
    github.com/project-slug: Codertocat/Hello-World
spec:
  type: service
  lifecycle: production
  owner: group:default/search
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: gitlab-example
  annotations:
    backstage.io/source-location: url:https://gitlab.example.com/gitlab-org/gitlab-test/-/tree/main/
spec:
  type: service
  lifecycle: production
  owner: group:default/search
"#;

struct Fixture {
    app: TestApp,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog-info.yaml");
    std::fs::write(&file, CATALOG).unwrap();
    let root = dir.path().display().to_string();
    let location = format!("file:{}", file.display());
    // /metrics looks back 30 days from 2026-03-03, the day after the scenario.
    let clock = paved_core::budgets::ledger::OffsetClock::starting_at(1_772_496_000_000);
    let app = test_app_with_clock(
        &[
            ("PAVED_CATALOG_FILE_ROOTS", root.as_str()),
            ("PAVED_CATALOG_LOCATIONS", location.as_str()),
            ("PAVED_EVENTS_GITHUB_SECRET", GITHUB_SECRET),
            ("PAVED_EVENTS_GITLAB_TOKEN", GITLAB_TOKEN),
        ],
        std::sync::Arc::new(clock),
    )
    .await;
    Fixture { app, _dir: dir }
}

impl Fixture {
    async fn post_raw(
        &self,
        uri: &str,
        headers: &[(&str, String)],
        body: &str,
    ) -> (StatusCode, Value) {
        let mut request = Request::post(uri).header("content-type", "application/json");
        for (k, v) in headers {
            request = request.header(*k, v.as_str());
        }
        let response = self
            .app
            .send(request.body(Body::from(body.to_owned())).unwrap())
            .await;
        let status = response.status();
        let text = body_text(response).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn github(
        &self,
        event: &str,
        delivery: &str,
        payload: &Value,
        secret: &str,
    ) -> (StatusCode, Value) {
        let body = payload.to_string();
        let signature = format!(
            "sha256={}",
            hex::encode(paved_core::integrations::hmac_sha256(
                secret.as_bytes(),
                body.as_bytes()
            ))
        );
        self.post_raw(
            "/api/events/v1/github",
            &[
                ("x-github-event", event.to_owned()),
                ("x-github-delivery", delivery.to_owned()),
                ("x-hub-signature-256", signature),
            ],
            &body,
        )
        .await
    }

    async fn generic(&self, token: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut headers = vec![("authorization", format!("Bearer {token}"))];
        if let Some(key) = key {
            headers.push(("idempotency-key", key.to_owned()));
        }
        self.post_raw("/api/events/v1/generic", &headers, &body.to_string())
            .await
    }

    async fn events(&self) -> i64 {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outcome_events")
            .fetch_one(&self.app.state.core.db)
            .await
            .unwrap()
    }

    async fn source(&self, kind: &str) -> String {
        let (status, created) = self
            .app
            .as_(ADMIN)
            .post(
                "/api/outcomes/v1/sources",
                json!({"kind": kind, "name": format!("{kind} pipeline")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["secret"].as_str().unwrap().to_owned()
    }
}

/// GitHub's own examples for an event and action (`None`: any), from npm.
fn github_examples(event: &str, action: Option<&str>) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../node_modules/@octokit/webhooks-examples/api.github.com/index.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == event)
        .unwrap_or_else(|| panic!("no {event} examples"))["examples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| action.is_none_or(|a| e["action"] == a))
        .cloned()
        .collect()
}

fn fixture_file(path: &str) -> Value {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(full).unwrap()).unwrap()
}

/// GitHub's recorded payloads are read, verified by signature, kept once
/// per delivery id, and become numbers for the component whose
/// `github.com/project-slug` names the repository.
#[tokio::test]
async fn github_deliveries_are_verified_idempotent_and_mapped_by_project_slug() {
    let f = fixture().await;
    // The example deployment, and its success.
    let deployment = github_examples("deployment", Some("created"))
        .into_iter()
        .find(|e| e["deployment"]["environment"] == "production")
        .unwrap();
    let status = github_examples("deployment_status", Some("created"))
        .into_iter()
        .find(|e| {
            e["deployment_status"]["state"] == "success"
                && e["deployment"]["environment"] == "production"
        })
        .unwrap();
    let push = github_examples("push", None)
        .into_iter()
        .find(|e| e["ref"] == "refs/heads/master" && !e["commits"].as_array().unwrap().is_empty())
        .unwrap();
    // GitHub publishes no merged pull request and no closed issue example:
    // the closed ones, marked merged / labelled as an incident.
    let mut merged = github_examples("pull_request", Some("closed")).remove(0);
    merged["pull_request"]["merged"] = json!(true);
    merged["pull_request"]["merged_at"] = json!("2019-05-15T15:21:00Z");
    let mut incident = github_examples("issues", Some("labeled")).remove(0);
    incident["issue"]["labels"] = json!([{"name": "incident"}]);
    incident["issue"]["created_at"] = json!("2019-05-15T16:00:00Z");

    let before = f.events().await;
    // A wrong secret, and none at all: 401, nothing kept.
    let (code, body) = f
        .github("deployment", "d-0", &deployment, "not-the-secret")
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    let (code, _) = f
        .post_raw(
            "/api/events/v1/github",
            &[("x-github-event", "push".into())],
            &push.to_string(),
        )
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(f.events().await, before);

    for (event, delivery, payload, facts) in [
        ("push", "p-1", &push, 1),
        ("deployment", "d-1", &deployment, 1),
        ("deployment_status", "s-1", &status, 1),
        ("pull_request", "pr-1", &merged, 1),
        ("issues", "i-1", &incident, 1),
        (
            "ping",
            "ping-1",
            &json!({"zen": "Keep it logically awesome."}),
            0,
        ),
    ] {
        let (code, receipt) = f.github(event, delivery, payload, GITHUB_SECRET).await;
        assert_eq!(code, StatusCode::ACCEPTED, "{event}: {receipt}");
        assert_eq!(receipt["facts"], facts, "{event}: {receipt}");
        assert_eq!(receipt["duplicate"], false);
    }
    // A redelivery changes nothing.
    let kept = f.events().await;
    let (code, receipt) = f
        .github("deployment_status", "s-1", &status, GITHUB_SECRET)
        .await;
    assert_eq!(
        (code, receipt["duplicate"].clone()),
        (StatusCode::ACCEPTED, json!(true))
    );
    assert_eq!(f.events().await, kept);

    let window = "from=2019-05-01&to=2019-06-01";
    let (code, dora) = f
        .app
        .as_(SEARCH_DEV)
        .get(&format!(
            "/api/outcomes/v1/components/default/hello-world/dora?{window}"
        ))
        .await;
    assert_eq!(code, StatusCode::OK, "{dora}");
    assert_eq!(dora["deployment_frequency"]["deployments"], 1, "{dora}");
    // The example incident was opened 40 minutes after the example deployment.
    assert_eq!(dora["change_failure_rate"]["value"], 1.0, "{dora}");
    assert_eq!(dora["recovery_time_seconds"]["open"], 1, "{dora}");
    assert_eq!(
        dora["recovery_time_seconds"]["median"],
        Value::Null,
        "{dora}"
    );
    let (_, incidents) = f
        .app
        .as_(SEARCH_DEV)
        .get(&format!(
            "/api/outcomes/v1/components/default/hello-world/incidents?{window}"
        ))
        .await;
    let reason = incidents["incidents"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("the latest production deployment"),
        "{incidents}"
    );
    // The label taken off: no longer an incident, and the numbers read
    // before (kept between reads) follow at once.
    let mut unlabeled = incident.clone();
    unlabeled["action"] = json!("unlabeled");
    unlabeled["issue"]["labels"] = json!([]);
    let (code, receipt) = f.github("issues", "i-2", &unlabeled, GITHUB_SECRET).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{receipt}");
    let (_, dora) = f
        .app
        .as_(SEARCH_DEV)
        .get(&format!(
            "/api/outcomes/v1/components/default/hello-world/dora?{window}"
        ))
        .await;
    assert_eq!(dora["change_failure_rate"]["value"], 0.0, "{dora}");
    assert_eq!(dora["recovery_time_seconds"]["open"], 0, "{dora}");
}

/// Deliveries that arrive together are kept in one transaction (group
/// commit), yet each is answered for itself: an id reused with another body
/// is refused while the rest are kept; and numbers read before follow every
/// delivery kept after them.
#[tokio::test]
async fn deliveries_arriving_together_are_each_answered_and_numbers_follow_them() {
    let f = fixture().await;
    let token = f.source("generic").await;
    let dora = || async {
        let (code, dora) = f
            .app
            .as_(PAYMENTS_LEAD)
            .get("/api/outcomes/v1/components/default/checkout/dora?from=2026-03-02&to=2026-03-03")
            .await;
        assert_eq!(code, StatusCode::OK, "{dora}");
        dora
    };
    assert_eq!(dora().await["deployment_frequency"]["deployments"], 0);
    let before = f.events().await;
    let deployment = |i: u32, minute: u32| {
        json!({"type": "deployment", "id": format!("D{i}"), "component": "checkout",
               "environment": "production", "finished_at": format!("2026-03-02T10:{minute:02}:00Z")})
    };
    let mut burst: Vec<(String, Value)> = (0..24)
        .map(|i| (format!("k{i}"), deployment(i, i)))
        .collect();
    // The same id as k5 with another body, in the same burst.
    burst.push(("k5".into(), deployment(99, 59)));
    let sends = burst
        .iter()
        .map(|(key, body)| f.generic(&token, Some(key), body));
    let answers = futures_util::future::join_all(sends).await;
    let accepted = answers
        .iter()
        .filter(|(code, _)| *code == StatusCode::ACCEPTED)
        .count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|(code, _)| *code == StatusCode::UNPROCESSABLE_ENTITY)
        .collect();
    assert_eq!((accepted, refused.len()), (24, 1), "{answers:?}");
    assert!(
        refused[0]
            .1
            .to_string()
            .contains("already received with another body"),
        "{refused:?}"
    );
    assert_eq!(f.events().await, before + 24);
    let after = dora().await;
    assert_eq!(after["deployment_frequency"]["deployments"], 24, "{after}");
    // One more, read again: the kept numbers are not served stale.
    let (code, _) = f
        .generic(&token, Some("k-late"), &deployment(100, 30))
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(dora().await["deployment_frequency"]["deployments"], 25);
}

/// A monorepo of two components, events sent out of order and twice through
/// the generic endpoint; every number below is worked out by hand.
#[tokio::test]
async fn a_monorepo_scenario_gives_the_hand_computed_five_keys() {
    let f = fixture().await;
    let token = f.source("generic").await;
    let repo = "https://github.com/acme/shop";
    let sha = |c: char| c.to_string().repeat(40);
    let change = |c: char, at: &str, parent: Option<char>, file: &str| {
        json!({"type": "change", "repo": repo, "sha": sha(c), "committed_at": at,
               "parents": parent.map(|p| vec![sha(p)]).unwrap_or_default(), "files": [file]})
    };
    // The deployment first, its changes after (out of order).
    let d1 = json!({"type": "deployment", "id": "D1", "repo": repo, "sha": sha('3'), "environment": "production",
                    "finished_at": "2026-03-02T12:00:00Z"});
    for (key, event) in [
        ("d1", d1.clone()),
        (
            "c1",
            change('1', "2026-03-02T08:00:00Z", None, "services/checkout/a.rs"),
        ),
        (
            "c2",
            change('2', "2026-03-02T09:00:00Z", Some('1'), "services/cart/b.rs"),
        ),
        (
            "c3",
            change(
                '3',
                "2026-03-02T10:00:00Z",
                Some('2'),
                "services/checkout/c.rs",
            ),
        ),
    ] {
        let (code, receipt) = f.generic(&token, Some(key), &event).await;
        assert_eq!(code, StatusCode::ACCEPTED, "{receipt}");
    }
    // Twice: by the same idempotency key, and by the same body without one.
    let (_, again) = f
        .generic(
            &token,
            Some("c2"),
            &change('2', "2026-03-02T09:00:00Z", Some('1'), "services/cart/b.rs"),
        )
        .await;
    assert_eq!(again["duplicate"], true);
    // The same key with other content is refused, not dropped as a duplicate.
    let (code, refused) = f
        .generic(
            &token,
            Some("c2"),
            &change('2', "2026-03-02T09:30:00Z", Some('1'), "services/cart/b.rs"),
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let staging = json!({"type": "deployment", "id": "S1", "repo": repo, "sha": sha('3'), "environment": "staging",
                         "finished_at": "2026-03-02T11:00:00Z"});
    f.generic(&token, None, &staging).await;
    let (_, again) = f.generic(&token, None, &staging).await;
    assert_eq!(again["duplicate"], true);
    let batch = json!({"events": [
        {"type": "incident", "id": "I1", "component": "checkout", "title": "Checkout times out",
         "created_at": "2026-03-02T13:00:00Z", "resolved_at": "2026-03-02T14:30:00Z"},
        change('4', "2026-03-02T15:00:00Z", Some('3'), "services/checkout/fix.rs"),
        {"type": "deployment", "id": "D2", "repo": repo, "sha": sha('4'), "environment": "production",
         "finished_at": "2026-03-02T16:00:00Z", "fixes": "I1"},
        {"type": "deployment", "id": "F1", "repo": repo, "sha": sha('4'), "environment": "production",
         "finished_at": "2026-03-02T17:00:00Z", "status": "failure"},
    ]});
    let (code, receipt) = f.generic(&token, Some("batch-1"), &batch).await;
    assert_eq!(
        (code, receipt["facts"].clone()),
        (StatusCode::ACCEPTED, json!(4)),
        "{receipt}"
    );

    let window = "from=2026-03-02&to=2026-03-03";
    let fr = &f;
    let get = move |uri: String| async move { fr.app.as_(PAYMENTS_LEAD).get(&uri).await };
    let (code, checkout) = get(format!(
        "/api/outcomes/v1/components/default/checkout/dora?{window}"
    ))
    .await;
    assert_eq!(code, StatusCode::OK, "{checkout}");
    // checkout: D1 (c1 4 h, c3 2 h) and D2 (c4 1 h); F1 failed and S1 is staging.
    assert_eq!(checkout["deployment_frequency"]["deployments"], 2);
    assert_eq!(checkout["deployment_frequency"]["deployment_days"], 1);
    assert_eq!(checkout["deployment_frequency"]["per_week"], 14.0);
    assert_eq!(checkout["deployment_frequency"]["band"], "elite");
    assert_eq!(
        checkout["lead_time_seconds"],
        json!({"median": 7200, "p90": 14400, "changes": 3, "band": "elite"})
    );
    // D1 caused I1 (the latest production deployment before it): 1 of 2.
    assert_eq!(
        checkout["change_failure_rate"],
        json!({"value": 0.5, "failed": 1, "deployments": 2, "band": "low"})
    );
    assert_eq!(
        checkout["recovery_time_seconds"],
        json!({"median": 5400, "incidents": 1, "open": 0, "band": "high"})
    );
    assert_eq!(
        checkout["rework_rate"],
        json!({"value": 0.5, "rework": 1, "deployments": 2})
    );
    assert_eq!(
        checkout["previous"]["deployment_frequency"]["deployments"],
        0
    );
    assert_eq!(
        checkout["previous"]["lead_time_seconds"]["median"],
        Value::Null
    );

    // cart: only D1 changed it (c2, 3 h); D2 touched checkout alone.
    let (_, cart) = get(format!(
        "/api/outcomes/v1/components/default/cart/dora?{window}"
    ))
    .await;
    assert_eq!(cart["deployment_frequency"]["deployments"], 1, "{cart}");
    assert_eq!(cart["lead_time_seconds"]["median"], 10_800);
    assert_eq!(cart["change_failure_rate"]["value"], 0.0);
    assert_eq!(cart["recovery_time_seconds"]["median"], Value::Null);

    // The team: D1 and D2 once each; c1..c4 → median of 1, 2, 3, 4 h = 2.5 h.
    let (code, team) = get(format!("/api/outcomes/v1/teams/payments/dora?{window}")).await;
    assert_eq!(code, StatusCode::OK, "{team}");
    assert_eq!(team["deployment_frequency"]["deployments"], 2, "{team}");
    assert_eq!(team["lead_time_seconds"]["median"], 9_000);
    assert_eq!(team["lead_time_seconds"]["changes"], 4);
    assert_eq!(team["change_failure_rate"]["value"], 0.5);

    // Every number with its reasons.
    let (_, changes) = get(format!(
        "/api/outcomes/v1/components/default/checkout/changes?{window}"
    ))
    .await;
    let listed: Vec<(&str, i64)> = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                &c["sha"].as_str().unwrap()[..1],
                c["lead_seconds"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("1", 14_400), ("3", 7_200), ("4", 3_600)]);
    assert!(
        changes["changes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("ancestor of the deployed commit"),
        "{changes}"
    );
    let (_, deployments) = get(format!(
        "/api/outcomes/v1/components/default/checkout/deployments?{window}"
    ))
    .await;
    let d2 = deployments["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "D2")
        .unwrap();
    assert_eq!(d2["rework"], "made to fix incident I1");
    let f1 = deployments["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["key"] == "F1")
        .unwrap();
    assert_eq!(f1["status"], "failure");
    assert!(f1["reason"].as_str().unwrap().contains("not counted"));
    let (_, incidents) = get(format!(
        "/api/outcomes/v1/components/default/checkout/incidents?{window}"
    ))
    .await;
    assert_eq!(incidents["incidents"][0]["deployment"], "D1", "{incidents}");

    // Another time zone moves D1..D2 (12:00–16:00 UTC) onto one Tokyo day still.
    let (_, tokyo) = get(format!(
        "/api/outcomes/v1/components/default/checkout/dora?{window}&tz=Asia/Tokyo"
    ))
    .await;
    assert_eq!(
        tokyo["deployment_frequency"]["deployment_days"], 1,
        "{tokyo}"
    );
    let (code, bad) = get(
        "/api/outcomes/v1/components/default/checkout/dora?from=2026-03-03&to=2026-03-02".into(),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    let (code, _) =
        get("/api/outcomes/v1/components/default/checkout/dora?tz=Mars/Olympus".into()).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);

    // The same numbers as Prometheus gauges over the trailing 30 days.
    let (code, metrics) = f.app.as_(ADMIN).text("GET", "/metrics", None).await;
    assert_eq!(code, StatusCode::OK);
    for line in [
        "paved_dora_team_deployments_per_week{team=\"payments\"} 0.4666666666666667",
        "paved_dora_team_lead_time_seconds{team=\"payments\"} 9000",
        "paved_dora_component_change_failure_rate{team=\"payments\",component=\"checkout\"} 0.5",
        "paved_dora_component_recovery_time_seconds{team=\"payments\",component=\"checkout\"} 5400",
        "paved_dora_component_rework_rate{team=\"payments\",component=\"cart\"} 0",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    // No data, no gauge: cart had no incidents.
    assert!(!metrics.contains(
        "paved_dora_component_recovery_time_seconds{team=\"payments\",component=\"cart\"}"
    ));
    promtool_check_metrics(&metrics);
}

/// Who may see and manage what; anonymous deliveries without a valid
/// token are refused and store nothing.
#[tokio::test]
async fn outcomes_are_read_by_the_catalog_rule_and_sources_managed_by_admins() {
    let f = fixture().await;
    // A team's outcomes: its members, PMs and admins; another team's developer is refused.
    let (code, _) = f
        .app
        .as_(PAYMENTS_DEV)
        .get("/api/outcomes/v1/teams/payments/dora")
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, refused) = f
        .app
        .as_(SEARCH_DEV)
        .get("/api/outcomes/v1/teams/payments/dora")
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{refused}");
    // A component's: everyone who reads the catalog.
    let (code, _) = f
        .app
        .as_(SEARCH_DEV)
        .get("/api/outcomes/v1/components/default/checkout/dora")
        .await;
    assert_eq!(code, StatusCode::OK);
    let (code, _) = f
        .app
        .as_(SEARCH_DEV)
        .get("/api/outcomes/v1/components/default/nothing-here/dora")
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    // Sources: admins only; the secret is shown once and never listed.
    let (code, _) = f
        .app
        .as_(PAYMENTS_LEAD)
        .get("/api/outcomes/v1/sources")
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = f
        .app
        .as_(PAYMENTS_LEAD)
        .post(
            "/api/outcomes/v1/sources",
            json!({"kind": "generic", "name": "mine"}),
        )
        .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let token = f.source("generic").await;
    let (_, listed) = f.app.as_(ADMIN).get("/api/outcomes/v1/sources").await;
    assert!(!listed.to_string().contains(&token));
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"env-github") && names.contains(&"env-gitlab"),
        "{listed}"
    );

    let event = json!({"type": "deployment", "id": "X", "component": "checkout", "environment": "production",
                       "finished_at": "2026-03-02T12:00:00Z"});
    let before = f.events().await;
    let (code, _) = f.generic("", None, &event).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = f.generic("pvev_guess", None, &event).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(f.events().await, before);
    // Rotation: the old token stops at once.
    let id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "generic")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, rotated) = f
        .app
        .as_(ADMIN)
        .post(&format!("/api/outcomes/v1/sources/{id}/rotate"), json!({}))
        .await;
    assert_eq!(code, StatusCode::OK, "{rotated}");
    let (code, _) = f.generic(&token, None, &event).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = f
        .generic(rotated["secret"].as_str().unwrap(), None, &event)
        .await;
    assert_eq!(code, StatusCode::ACCEPTED);
    // A bad body names its field and keeps nothing.
    let kept = f.events().await;
    let (code, body) = f
        .generic(
            rotated["secret"].as_str().unwrap(),
            None,
            &json!({"type": "deployment", "id": "Y", "component": "checkout"}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains("environment"), "{body}");
    assert_eq!(f.events().await, kept);
}

/// GitLab's documented webhook bodies with the `X-Gitlab-Token` of the
/// environment's source: a wrong token is refused; the deployment's full
/// sha comes from its commit URL; the incident is read.
#[tokio::test]
async fn gitlab_webhooks_are_read_with_their_token() {
    let f = fixture().await;
    let send =
        |event: &'static str, file: &'static str, token: &'static str, uuid: &'static str| {
            let body = fixture_file(file).to_string();
            let f = &f;
            async move {
                f.post_raw(
                    "/api/events/v1/gitlab",
                    &[
                        ("x-gitlab-event", event.to_owned()),
                        ("x-gitlab-token", token.to_owned()),
                        ("x-gitlab-event-uuid", uuid.to_owned()),
                    ],
                    &body,
                )
                .await
            }
        };
    let (code, _) = send("Push Hook", "gitlab/push.json", "wrong", "u-0").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    for (event, file, uuid) in [
        ("Push Hook", "gitlab/push.json", "u-1"),
        (
            "Merge Request Hook",
            "gitlab/merge_request_merged.json",
            "u-2",
        ),
        ("Deployment Hook", "gitlab/deployment.json", "u-3"),
        ("Issue Hook", "gitlab/issue_incident.json", "u-4"),
    ] {
        let (code, receipt) = send(event, file, GITLAB_TOKEN, uuid).await;
        assert_eq!(code, StatusCode::ACCEPTED, "{event}: {receipt}");
        assert!(
            receipt["facts"].as_u64().unwrap() >= 1,
            "{event}: {receipt}"
        );
    }
    let (_, again) = send(
        "Deployment Hook",
        "gitlab/deployment.json",
        GITLAB_TOKEN,
        "u-3",
    )
    .await;
    assert_eq!(again["duplicate"], true);
    // One action can trigger several hooks with the same event UUID: each is kept.
    let (_, other_hook) = send(
        "Issue Hook",
        "gitlab/issue_incident.json",
        GITLAB_TOKEN,
        "u-3",
    )
    .await;
    assert_eq!(other_hook["duplicate"], false, "{other_hook}");
    // GitLab's Idempotency-Key identifies the delivery across retries.
    let retry = |uuid: &'static str| {
        let body = fixture_file("gitlab/push.json").to_string();
        let f = &f;
        async move {
            f.post_raw(
                "/api/events/v1/gitlab",
                &[
                    ("x-gitlab-event", "Push Hook".to_owned()),
                    ("x-gitlab-token", GITLAB_TOKEN.to_owned()),
                    ("x-gitlab-event-uuid", uuid.to_owned()),
                    ("idempotency-key", "push-retry-1".to_owned()),
                ],
                &body,
            )
            .await
        }
    };
    assert_eq!(retry("r-1").await.1["duplicate"], false);
    assert_eq!(retry("r-2").await.1["duplicate"], true);
    let deployment = fixture_file("gitlab/deployment.json");
    let full_sha = deployment["commit_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let stored = sqlx::query_scalar::<_, Option<String>>(
        "SELECT sha FROM outcome_deployments WHERE source_id = 'env-gitlab'",
    )
    .fetch_one(&f.app.state.core.db)
    .await
    .unwrap();
    assert_eq!(stored.as_deref(), Some(full_sha.as_str()));
    let incidents = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM outcome_incidents WHERE source_id = 'env-gitlab'",
    )
    .fetch_one(&f.app.state.core.db)
    .await
    .unwrap();
    assert_eq!(incidents, 1);
}

/// Apache DevLake's webhook API unchanged: the current and the older body,
/// incidents and their close, pull requests; DevLake's own answers.
#[tokio::test]
async fn devlake_webhook_bodies_are_taken_unchanged() {
    let f = fixture().await;
    let token = f.source("devlake").await;
    let auth = [("authorization", format!("Bearer {token}"))];
    for (path, file) in [
        ("deployments", "devlake/deployment.json"),
        ("deployments", "devlake/deployment_legacy.json"),
        ("issues", "devlake/incident.json"),
        ("pull_requests", "devlake/pull_request.json"),
    ] {
        let (code, body) = f
            .post_raw(
                &format!("/api/events/v1/devlake/connections/1/{path}"),
                &auth,
                &fixture_file(file).to_string(),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{file}: {body}");
        assert_eq!(
            body,
            json!({"code": 0, "success": true, "message": "success", "causes": null, "data": null})
        );
    }
    let incident = fixture_file("devlake/incident.json");
    let key = incident["issueKey"].as_str().unwrap();
    let (code, _) = f
        .post_raw(
            &format!("/api/events/v1/devlake/connections/1/issue/{key}/close"),
            &auth,
            "",
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    let mut empty = fixture_file("devlake/deployment.json");
    empty["deploymentCommits"] = json!([]);
    let (code, body) = f
        .post_raw(
            "/api/events/v1/devlake/connections/1/deployments",
            &auth,
            &empty.to_string(),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["success"], false);
    let (code, _) = f
        .post_raw(
            "/api/events/v1/devlake/connections/1/deployments",
            &[],
            &fixture_file("devlake/deployment.json").to_string(),
        )
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let deployments = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outcome_deployments")
        .fetch_one(&f.app.state.core.db)
        .await
        .unwrap();
    assert!(deployments >= 2, "{deployments}");
}

/// The Outcomes pages and their server functions: the team's people see
/// the numbers with the reason behind each row, another team's developer is
/// refused, and only admins manage event sources (the secret shown once).
#[tokio::test]
async fn outcomes_pages_explain_each_number_to_the_right_people() {
    let f = fixture().await;
    let token = f.source("generic").await;
    let repo = "https://github.com/acme/shop";
    let sha = |c: char| c.to_string().repeat(40);
    let batch = json!({"events": [
        {"type": "change", "repo": repo, "sha": sha('a'), "committed_at": "2026-03-02T08:00:00Z",
         "files": ["services/checkout/a.rs"]},
        {"type": "deployment", "id": "REL-1", "repo": repo, "sha": sha('a'), "environment": "production",
         "title": "Release one", "finished_at": "2026-03-02T10:00:00Z"},
        {"type": "incident", "id": "INC-9", "component": "checkout", "title": "Checkout is down",
         "created_at": "2026-03-02T11:00:00Z", "resolved_at": "2026-03-02T12:00:00Z",
         "cause": {"deployment": "REL-1"}},
        {"type": "change", "repo": repo, "sha": sha('b'), "parents": [sha('a')],
         "committed_at": "2026-03-02T11:30:00Z", "files": ["services/checkout/fix.rs"]},
        {"type": "deployment", "id": "REL-2", "repo": repo, "sha": sha('b'), "environment": "production",
         "title": "Hotfix", "finished_at": "2026-03-02T11:50:00Z", "fixes": "INC-9"},
    ]});
    let (code, receipt) = f.generic(&token, Some("page-batch"), &batch).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{receipt}");

    let member = f
        .app
        .session_for("pat", &[("payments", TeamRole::Member)], &[])
        .await;
    let outsider = f
        .app
        .session_for("sam", &[("search", TeamRole::Member)], &[])
        .await;
    let admin = f
        .app
        .session_for("ada", &[], &[PlatformRole::PlatformAdmin])
        .await;
    let window = "from=2026-03-02&to=2026-03-03";

    // The server function behind both pages.
    let r = f
        .app
        .with_session(&member)
        .call(
            "outcomes_data",
            &format!("team=payments&{window}&list=changes"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body_json(r).await;
    assert_eq!(
        page["dora"]["deployment_frequency"]["deployments"], 2,
        "{page}"
    );
    assert_eq!(page["dora"]["rework_rate"]["rework"], 1, "{page}");
    assert_eq!(page["dora"]["change_failure_rate"]["failed"], 1, "{page}");
    assert_eq!(page["weeks"].as_array().unwrap().len(), 12);
    assert_eq!(page["list_total"], 2, "{page}");
    assert_eq!(page["behind"]["changes"].as_array().unwrap().len(), 2);
    assert!(page["behind"]["deployments"].as_array().unwrap().is_empty());
    // A later push and deployment show at once (the history read above is
    // not served from memory after it changed).
    let later = json!({"events": [
        {"type": "change", "repo": repo, "sha": sha('c'), "parents": [sha('b')],
         "committed_at": "2026-03-02T13:00:00Z", "files": ["services/checkout/b.rs"]},
        {"type": "deployment", "id": "REL-3", "repo": repo, "sha": sha('c'), "environment": "production",
         "finished_at": "2026-03-02T15:00:00Z"},
    ]});
    let (code, receipt) = f.generic(&token, Some("page-later"), &later).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{receipt}");
    let r = f
        .app
        .with_session(&member)
        .call(
            "outcomes_data",
            &format!("team=payments&{window}&list=changes"),
        )
        .await;
    let page = body_json(r).await;
    assert_eq!(
        page["dora"]["deployment_frequency"]["deployments"], 3,
        "{page}"
    );
    // The new commit's time is known: the history was read again.
    assert_eq!(page["dora"]["lead_time_seconds"]["changes"], 3, "{page}");
    let r = f
        .app
        .with_session(&outsider)
        .call("outcomes_data", &format!("team=payments&{window}"))
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A component's outcomes are open to everyone who reads the catalog.
    let r = f
        .app
        .with_session(&outsider)
        .call(
            "outcomes_data",
            &format!("component=component:default/checkout&{window}"),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = f
        .app
        .with_session(&member)
        .call("outcomes_data", "team=payments&from=tomorrow")
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The rendered page: the five keys, and why the hotfix is rework.
    let (code, html) = f
        .app
        .with_session(&member)
        .text(
            "GET",
            &format!("/teams/payments/outcomes?{window}&list=deployments"),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    for text in [
        "Deployment frequency",
        "Lead time for changes",
        "Change failure rate",
        "Failed deployment recovery time",
        "Deployment rework rate",
        "made to fix incident INC-9",
        "Caused INC-9",
        "Hotfix",
    ] {
        assert!(html.contains(text), "{text} missing from the page");
    }
    // A component with no events says how to send them.
    let (_, html) = f
        .app
        .with_session(&member)
        .text(
            "GET",
            "/catalog/component/default/cart/outcomes?from=2020-01-01&to=2020-02-01",
            None,
        )
        .await;
    assert!(html.contains("No delivery events reached component cart by the end of this window"));
    assert!(html.contains("http://paved.test/api/events/v1/generic"));

    // Event sources: admins only; the secret is in the answer once.
    let r = f
        .app
        .with_session(&member)
        .call("event_source_create", "kind=generic&name=ci")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = f
        .app
        .with_session(&admin)
        .call("event_source_create", "kind=generic&name=ci")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let created = body_json(r).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("pvev_"), "{created}");
    let r = f.app.with_session(&admin).call("event_sources", "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let listing = body_text(r).await;
    assert!(listing.contains("\"ci\"") && !listing.contains(&secret));
    let r = f
        .app
        .with_session(&admin)
        .call("event_source_create", "kind=svn&name=old")
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = f.app.with_session(&member).call("event_sources", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// What an attacker with a source's token would send: a `javascript:` link
/// and markup in an incident, a body past the limit, malformed JSON. None
/// becomes a link or markup on the page, and refused bodies keep nothing.
#[tokio::test]
async fn attack_hostile_event_fields_never_become_links_markup_or_rows() {
    let f = fixture().await;
    let token = f.source("generic").await;
    let incident = json!({"type": "incident", "id": "EVIL-1", "component": "checkout",
        "title": "<script>alert(1)</script>\n---\nowner: attacker",
        "url": "javascript:alert(1)", "created_at": "2026-03-02T10:00:00Z"});
    let (code, receipt) = f.generic(&token, Some("evil-1"), &incident).await;
    assert_eq!(code, StatusCode::ACCEPTED, "{receipt}");
    let member = f
        .app
        .session_for("pat", &[("payments", TeamRole::Member)], &[])
        .await;
    let (code, html) = f
        .app
        .with_session(&member)
        .text(
            "GET",
            "/catalog/component/default/checkout/outcomes?from=2026-03-02&to=2026-03-03&list=incidents",
            None,
        )
        .await;
    assert_eq!(code, StatusCode::OK);
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert(1)"));
    assert!(!html.contains("href=\"javascript:"));

    let kept = f.events().await;
    let huge = format!(
        "{{\"type\": \"change\", \"repo\": \"https://github.com/acme/shop\", \"pad\": \"{}\"}}",
        "x".repeat(26 * 1024 * 1024)
    );
    let (code, _) = f
        .post_raw(
            "/api/events/v1/generic",
            &[("authorization", format!("Bearer {token}"))],
            &huge,
        )
        .await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    let (code, _) = f
        .post_raw(
            "/api/events/v1/generic",
            &[("authorization", format!("Bearer {token}"))],
            "{\"type\": \"deployment\",",
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(f.events().await, kept);
}
