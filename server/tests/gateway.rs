//! The LLM gateway and the budgets API over the real router, against a local
//! OpenAI-compatible upstream (`paved-llm-stub`) that answers 200, 429, 500,
//! slowly or streamed on demand.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use common::*;
use paved_core::auth::{PlatformRole, TeamRole};
use paved_llm_stub::{Behaviour, Stub};
use serde_json::{json, Value};

use common::tokens::{
    ADMIN, PAYMENTS_DEV as DEV, PAYMENTS_LEAD as LEAD, SEARCH_LEAD as OTHER_LEAD,
};
/// The caller's trace: the gateway must keep its trace id upstream and in the usage record.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

struct Gw {
    app: TestApp,
    stub: Stub,
    _files: tempfile::TempDir,
}

fn upstreams(addr: std::net::SocketAddr) -> String {
    format!(
        "models:\n  - model: stub-chat\n    provider: stub\n    base_url: http://{addr}/v1\n    max_output_tokens: 1000\n  - model: stub-embed\n    provider: stub\n    base_url: http://{addr}/v1\n    type: embeddings\n  - model: unpriced\n    provider: stub\n    base_url: http://{addr}/v1\n"
    )
}

fn vars(files: &std::path::Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = vec![
        (
            "PAVED_LLM_UPSTREAMS".into(),
            files.join("upstreams.yaml").display().to_string(),
        ),
        ("PAVED_BUDGET_TIMEZONE".into(), "Europe/Berlin".into()),
        ("PAVED_LLM_RETRY_BASE_MS".into(), "20".into()),
        ("PAVED_LLM_RETRY_CAP_MS".into(), "100".into()),
        ("PAVED_LLM_BREAKER_FAILURES".into(), "3".into()),
        ("PAVED_LLM_BREAKER_COOLDOWN_MS".into(), "600".into()),
        ("PAVED_LLM_TIMEOUT_SECS".into(), "20".into()),
    ];
    for (k, val) in extra {
        v.retain(|(name, _)| name != k);
        v.push(((*k).into(), (*val).into()));
    }
    v
}

/// The gateway tests' clock: real time passing from Wednesday 18 March 2026,
/// 13:00 in Berlin, far from any day, week or month boundary, so no test
/// depends on when it runs. One offset for the whole binary, so apps that
/// restart on the same database (the crash test) share one timeline.
fn mid_period_clock() -> Arc<dyn paved_core::budgets::ledger::Clock> {
    use paved_core::budgets::ledger::OffsetClock;
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let offset = *OFFSET.get_or_init(|| {
        let anchor: jiff::Timestamp = "2026-03-18T12:00:00Z".parse().unwrap();
        anchor.as_millisecond() - jiff::Timestamp::now().as_millisecond()
    });
    Arc::new(OffsetClock::with_offset(offset))
}

async fn gateway(extra: &[(&str, &str)]) -> Gw {
    gateway_with(Stub::new(), upstreams, extra).await
}

/// The app with `stub` as the provider, routed by the file `routes` writes for its address.
async fn gateway_with(
    stub: Stub,
    routes: impl FnOnce(std::net::SocketAddr) -> String,
    extra: &[(&str, &str)],
) -> Gw {
    let addr = paved_llm_stub::spawn(stub.clone()).await;
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("upstreams.yaml"), routes(addr)).unwrap();
    let owned = vars(files.path(), extra);
    let borrowed: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let app = test_app_with_clock(&borrowed, mid_period_clock()).await;
    // Signing people in creates the teams.
    app.session_for("lee", &[("payments", TeamRole::Lead)], &[])
        .await;
    app.session_for("sam", &[("search", TeamRole::Lead)], &[])
        .await;
    let gw = Gw {
        app,
        stub,
        _files: files,
    };
    // $0.10 per million input tokens and $10 per million output tokens:
    // 1,000 output tokens cost exactly one cent.
    gw.price("stub-chat", "0.10", "10").await;
    gw.price("stub-embed", "0.02", "0").await;
    gw
}

impl Gw {
    async fn price(&self, model: &str, input: &str, output: &str) {
        let (status, body) = self
            .app
            .as_(ADMIN)
            .put(
                &format!("/api/budgets/v1/prices/stub/{model}"),
                json!({"input_usd_per_mtok": input, "output_usd_per_mtok": output}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn budget(&self, team: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.app
            .as_(token)
            .put(&format!("/api/budgets/v1/teams/{team}"), body)
            .await
    }

    async fn key(&self, team: &str, token: &str, workspace: Option<&str>) -> String {
        let (status, created) = self
            .app
            .as_(token)
            .post(
                &format!("/api/budgets/v1/teams/{team}/keys"),
                json!({"name": "ci", "workspace_id": workspace}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created["key"].as_str().unwrap().to_owned()
    }
}

fn chat(key: &str, body: Value) -> Request<Body> {
    Request::post("/llm/v1/chat/completions")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header("traceparent", TRACEPARENT)
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn with_key(mut request: Request<Body>, idempotency_key: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert("idempotency-key", idempotency_key.parse().unwrap());
    request
}

fn hello(max_tokens: i64) -> Value {
    json!({"model": "stub-chat", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]})
}

async fn usage_rows(
    app: &TestApp,
) -> Vec<(String, i64, i64, i64, i64, Option<String>, Option<String>)> {
    app.state.core.gateway.flush().await;
    sqlx::query_as(
        "SELECT team, input_tokens, output_tokens, cost_nanocents, status, error_type, trace_id FROM llm_usage ORDER BY id",
    )
    .fetch_all(&app.state.core.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn chat_embeddings_and_models_are_proxied_charged_and_recorded() {
    let gw = gateway(&[]).await;
    let (status, budget) = gw
        .budget("payments", LEAD, json!({"period": "monthly", "limit_cents": 500, "soft_alert_percent": 80, "on_limit": "block", "allowed_models": [], "rpm_limit": null, "tpm_limit": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{budget}");
    let key = gw.key("payments", LEAD, None).await;
    assert!(key.starts_with("pvg_"));

    let r = gw.app.send(chat(&key, hello(100))).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(
        r.headers()["x-paved-budget-remaining-cents"]
            .to_str()
            .unwrap(),
        "499",
        "10 prompt + 20 completion tokens cost 0.0201 cents; remaining rounds down"
    );
    assert!(r.headers().contains_key("x-paved-budget-reset"));
    let body = body_json(r).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        paved_llm_stub::REPLY
    );

    // The caller's trace id travels upstream (as a child span) and into the usage record.
    let seen = gw.stub.requests();
    let upstream_tp = seen[0].traceparent.clone().unwrap();
    assert!(
        upstream_tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{upstream_tp}"
    );
    assert_ne!(upstream_tp, TRACEPARENT);

    let r = gw
        .app
        .send(
            Request::post("/llm/v1/embeddings")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::from(
                    json!({"model": "stub-embed", "input": ["a", "b"]}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(body_json(r).await["data"].as_array().unwrap().len(), 2);

    let models = gw
        .app
        .send(get_with(
            "/llm/v1/models",
            header::AUTHORIZATION,
            &format!("Bearer {key}"),
        ))
        .await;
    let ids: Vec<String> = body_json(models).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        ["stub-chat", "stub-embed"],
        "the unpriced model is not offered"
    );

    let rows = usage_rows(&gw.app).await;
    assert_eq!(rows.len(), 2);
    // 10 × 10,000 + 20 × 1,000,000 nanocents.
    assert_eq!(
        rows[0],
        (
            "payments".into(),
            10,
            20,
            20_100_000,
            200,
            None,
            Some("4bf92f3577b34da6a3ce929d0e0e4736".into())
        )
    );
    // What the gateway itself added is recorded beside the whole time, and
    // the dashboards' rollups follow the rows in the same transaction.
    let (overhead_us, latency_ms): (Option<i64>, i64) =
        sqlx::query_as("SELECT overhead_us, latency_ms FROM llm_usage ORDER BY id LIMIT 1")
            .fetch_one(&gw.app.state.core.db)
            .await
            .unwrap();
    let overhead_us = overhead_us.expect("a provider was called");
    assert!((0..=latency_ms * 1000 + 999).contains(&overhead_us));
    let (requests, cost, timed): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT SUM(requests) FROM llm_usage_daily WHERE team = 'payments'),
                (SELECT SUM(cost_nanocents) FROM llm_usage_daily WHERE team = 'payments'),
                (SELECT SUM(timed) FROM llm_usage_model_hourly)",
    )
    .fetch_one(&gw.app.state.core.db)
    .await
    .unwrap();
    assert_eq!(
        (requests, cost, timed),
        (2, rows[0].3 + rows[1].3, 2),
        "{rows:?}"
    );

    // A model without a price is refused, never free.
    let r = gw
        .app
        .send(chat(&key, json!({"model": "unpriced", "messages": []})))
        .await;
    assert_status(&r, StatusCode::FORBIDDEN);
    let body = body_json(r).await;
    assert_eq!(body["error"]["type"], "model_not_priced");
    assert_eq!(gw.stub.count(), 2, "refusals never reach the provider");

    // No key, a wrong key, and a revoked key are all 401 in OpenAI's shape.
    let r = gw.app.send(chat("pvg_wrong", hello(10))).await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
    assert_eq!(body_json(r).await["error"]["type"], "invalid_api_key");
    let (_, keys) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/keys")
        .await;
    let id = keys[0]["id"].as_i64().unwrap();
    assert!(
        keys[0].get("key").is_none() && !keys.to_string().contains(&key),
        "keys are shown once"
    );
    assert!(
        !contains_bytes(&gw.app.database_bytes(), &key),
        "stored hashed"
    );
    let r = gw
        .app
        .as_(DEV)
        .response(
            "DELETE",
            &format!("/api/budgets/v1/teams/payments/keys/{id}"),
            None,
        )
        .await;
    assert_status(&r, StatusCode::FORBIDDEN);
    let r = gw
        .app
        .as_(LEAD)
        .response(
            "DELETE",
            &format!("/api/budgets/v1/teams/payments/keys/{id}"),
            None,
        )
        .await;
    assert_status(&r, StatusCode::NO_CONTENT);
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
    let (_, keys) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/keys")
        .await;
    assert!(keys[0]["last_used_at"].is_i64() && keys[0]["revoked_at"].is_i64());
}

#[tokio::test]
async fn two_hundred_concurrent_requests_never_overspend() {
    let gw = gateway(&[]).await;
    // Every answer uses all 1,000 allowed output tokens: one cent each, the worst case.
    gw.stub
        .set_default(Behaviour::ok().with_usage(0, 1000).with_delay_ms(50));
    gw.price("stub-chat", "0", "10").await;
    let (status, _) = gw
        .budget(
            "payments",
            LEAD,
            json!({"period": "daily", "limit_cents": 50}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let key = gw.key("payments", LEAD, None).await;
    let body = hello(1000);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let router = gw.app.router.clone();
        let request = chat(&key, body.clone());
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let r = router.oneshot(request).await.unwrap();
            let status = r.status();
            let headers = r.headers().clone();
            (status, headers, body_json(r).await)
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        let (status, headers, body) = t.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert_eq!(body["error"]["type"], "budget_exceeded", "{body}");
                let message = body["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains("team payments budget of $0.50 per day"),
                    "{message}"
                );
                assert!(headers.contains_key("x-paved-budget-remaining-cents"));
                assert!(headers.contains_key("x-paved-budget-reset"));
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // The prompt bytes cost nothing here, so exactly 50 worst cases fit the inclusive limit.
    assert_eq!((ok, refused), (50, 150));
    assert_eq!(gw.stub.count(), 50);
    let rows = usage_rows(&gw.app).await;
    let spent: i64 = rows.iter().map(|r| r.3).sum();
    assert_eq!(
        spent,
        50 * 1_000_000_000,
        "spend reaches the limit exactly and never passes it"
    );
    assert_eq!(gw.app.state.core.budgets.ledger.held_count(), 0);
    let held: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM llm_reservations WHERE state = 'held'")
            .fetch_one(&gw.app.state.core.db)
            .await
            .unwrap();
    assert_eq!(held, 0, "no reservation is left after settling");
    let (_, view) = gw.app.as_(DEV).get("/api/budgets/v1/teams/payments").await;
    assert_eq!(
        (
            view["spent_cents"].as_i64(),
            view["reserved_cents"].as_i64(),
            view["remaining_cents"].as_i64()
        ),
        (Some(50), Some(0), Some(0))
    );
    assert!(view["period_start"].as_str().unwrap().ends_with(":00:00Z"));
    assert!(view["resets_at"].is_string());
}

#[tokio::test]
async fn idempotency_keys_replay_once_refuse_other_bodies_and_concurrent_duplicates() {
    let gw = gateway(&[]).await;
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 1000}),
    )
    .await;
    let key = gw.key("payments", LEAD, None).await;
    let first = gw
        .app
        .send(with_key(chat(&key, hello(50)), "order-42"))
        .await;
    assert_status(&first, StatusCode::OK);
    let first = body_text(first).await;
    let again = gw
        .app
        .send(with_key(chat(&key, hello(50)), "order-42"))
        .await;
    assert_status(&again, StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        body_text(again).await,
        first,
        "the stored first response, byte for byte"
    );
    assert_eq!(gw.stub.count(), 1, "one upstream call");
    let charged: Vec<i64> = usage_rows(&gw.app)
        .await
        .iter()
        .map(|r| r.3)
        .filter(|c| *c > 0)
        .collect();
    assert_eq!(charged.len(), 1, "one charge");

    // Same key, different body.
    let r = gw
        .app
        .send(with_key(chat(&key, hello(51)), "order-42"))
        .await;
    assert_status(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body_json(r).await["error"]["type"],
        "idempotency_key_reused"
    );

    // The replay survives a restart of the in-memory state: it comes from SQLite.
    gw.app.state.core.gateway.flush().await;
    let again = gw
        .app
        .send(with_key(chat(&key, hello(50)), "order-42"))
        .await;
    assert_eq!(body_text(again).await, first);

    // A duplicate while the first is still running.
    gw.stub.push(Behaviour::ok().with_delay_ms(1500));
    let router = gw.app.router.clone();
    let slow = chat(&key, hello(60));
    let running = tokio::spawn(async move {
        use tower::ServiceExt;
        router
            .oneshot(with_key(slow, "order-43"))
            .await
            .unwrap()
            .status()
    });
    let started = Instant::now();
    while gw.stub.count() < 2 {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = gw
        .app
        .send(with_key(chat(&key, hello(60)), "order-43"))
        .await;
    assert_status(&r, StatusCode::CONFLICT);
    assert_eq!(
        body_json(r).await["error"]["type"],
        "idempotency_key_in_use"
    );
    assert_eq!(running.await.unwrap(), StatusCode::OK);
    let r = gw
        .app
        .send(with_key(chat(&key, hello(10)), &"k".repeat(256)))
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn retries_honour_retry_after_skip_client_errors_and_breakers_open_and_close() {
    let gw = gateway(&[]).await;
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 1000}),
    )
    .await;
    let key = gw.key("payments", LEAD, None).await;

    gw.stub.push(Behaviour::status(429).with_retry_after("1"));
    let started = Instant::now();
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(gw.stub.count(), 2);

    // Client errors are not retried; the provider's message comes through.
    gw.stub.reset();
    gw.stub.push(Behaviour::status(400));
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    assert!(body_text(r).await.contains("stub error 400"));
    assert_eq!(gw.stub.count(), 1);
    // A refused platform credential is the platform's problem, not the caller's key.
    gw.stub.push(Behaviour::status(401));
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::BAD_GATEWAY);
    assert_eq!(
        body_json(r).await["error"]["type"],
        "upstream_credential_error"
    );
    assert_eq!(gw.stub.count(), 2);
    // A 429 that means the provider's spend limit is not retried either.
    gw.stub
        .push(Behaviour::status(429).with_error_code("insufficient_quota"));
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(gw.stub.count(), 3);

    // Three 500s (one request and its two retries) open the breaker.
    gw.stub.reset();
    for _ in 0..3 {
        gw.stub.push(Behaviour::status(500));
    }
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(gw.stub.count(), 3);
    let (_, circuits) = gw.app.as_(DEV).get("/api/budgets/v1/circuits").await;
    assert_eq!(circuits[0]["state"], "open", "{circuits}");
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(body_json(r).await["error"]["type"], "circuit_open");
    assert_eq!(
        gw.stub.count(),
        3,
        "an open breaker keeps requests off the provider"
    );
    tokio::time::sleep(Duration::from_millis(650)).await;
    let (_, circuits) = gw.app.as_(DEV).get("/api/budgets/v1/circuits").await;
    assert_eq!(circuits[0]["state"], "half_open");
    // The probe succeeds: closed again.
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::OK);
    let (_, circuits) = gw.app.as_(DEV).get("/api/budgets/v1/circuits").await;
    assert_eq!(circuits[0]["state"], "closed");
    // Failures cost nothing: only the successful calls were charged.
    let rows = usage_rows(&gw.app).await;
    assert!(rows.iter().filter(|r| r.4 != 200).all(|r| r.3 == 0));
    let errors: Vec<Option<String>> = rows.iter().map(|r| r.5.clone()).collect();
    assert!(
        errors.contains(&Some("circuit_open".into()))
            && errors.contains(&Some("upstream_5xx".into()))
    );
}

#[tokio::test]
async fn streaming_passes_events_through_and_charges_the_final_usage() {
    let gw = gateway(&[]).await;
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 1000}),
    )
    .await;
    let key = gw.key("payments", LEAD, None).await;
    gw.stub.set_default(Behaviour::ok().with_usage(7, 30));
    let r = gw
        .app
        .send(chat(&key, json!({"model": "stub-chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]})))
        .await;
    assert_status(&r, StatusCode::OK);
    assert!(r.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = body_text(r).await;
    assert!(
        text.contains("Hello") && text.trim_end().ends_with("data: [DONE]"),
        "{text}"
    );
    assert!(
        !text.contains("\"usage\":{"),
        "the caller did not ask for usage: {text}"
    );
    // The gateway asked for it anyway, for the ledger.
    assert_eq!(
        gw.stub.requests()[0].body["stream_options"]["include_usage"],
        true
    );
    let r = gw
        .app
        .send(chat(&key, json!({"model": "stub-chat", "stream": true, "stream_options": {"include_usage": true}, "messages": []})))
        .await;
    let text = body_text(r).await;
    assert!(text.contains("\"prompt_tokens\":7"), "{text}");
    let rows = usage_rows(&gw.app).await;
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| (r.1, r.2, r.3) == (7, 30, 7 * 10_000 + 30 * 1_000_000)));
}

#[tokio::test]
async fn budgets_follow_the_same_rules_for_every_caller() {
    let gw = gateway(&[]).await;
    let good = json!({"period": "weekly", "limit_cents": 2500, "soft_alert_percent": 75, "on_limit": "alert", "allowed_models": ["stub-chat"], "rpm_limit": 100, "tpm_limit": 100000});
    // Another team's lead, and a developer of this team, cannot change it.
    let (status, body) = gw.budget("payments", OTHER_LEAD, good.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = gw.budget("payments", DEV, good.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, view) = gw.budget("payments", LEAD, good.clone()).await;
    assert_eq!(status, StatusCode::OK);
    for field in [
        "period",
        "limit_cents",
        "soft_alert_percent",
        "on_limit",
        "allowed_models",
        "rpm_limit",
        "tpm_limit",
    ] {
        assert_eq!(view[field], good[field], "{field}");
    }
    // The developer reads it; the other team does not.
    let (status, read) = gw.app.as_(DEV).get("/api/budgets/v1/teams/payments").await;
    assert_eq!(status, StatusCode::OK);
    for field in ["spent_cents", "reserved_cents", "period_start", "resets_at"] {
        assert!(!read[field].is_null(), "{field}");
    }
    let (status, _) = gw
        .app
        .as_(OTHER_LEAD)
        .get("/api/budgets/v1/teams/payments")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Bad input names its fields; a model without a price is refused.
    let (status, body) = gw
        .budget(
            "payments",
            LEAD,
            json!({"period": "hourly", "limit_cents": "lots", "allowed_models": ["gpt-9"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("period") && message.contains("limit_cents"),
        "{message}"
    );
    let (status, body) = gw
        .budget(
            "payments",
            LEAD,
            json!({"period": "daily", "limit_cents": 10, "allowed_models": ["unpriced"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("unpriced has no price"));
    // A stale version conflicts.
    let (status, _) = gw
        .budget(
            "payments",
            LEAD,
            json!({"period": "daily", "limit_cents": 10, "version": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, history) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/history")
        .await;
    assert_eq!(history.as_array().unwrap().len(), 1);

    // A key of team payments spends only payments' budget; search has none, and its key is refused.
    let key = gw.key("payments", LEAD, Some("checkout")).await;
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::OK);
    let search_key = gw.key("search", OTHER_LEAD, None).await;
    let r = gw.app.send(chat(&search_key, hello(10))).await;
    assert_status(&r, StatusCode::FORBIDDEN);
    assert!(body_text(r).await.contains("team search has no LLM budget"));
    let rows = usage_rows(&gw.app).await;
    assert_eq!(
        rows.iter()
            .filter(|r| r.4 == 200)
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        ["payments"]
    );
    // Models outside the allow-list are refused.
    let r = gw
        .app
        .send(chat(&key, json!({"model": "stub-embed", "messages": []})))
        .await;
    assert_eq!(
        r.status().as_u16(),
        400,
        "embeddings model on the chat route"
    );

    // Usage by model, workspace and day, and the billing CSV.
    let (status, by_model) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/usage?group_by=model")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_model["groups"][0]["key"], "stub-chat");
    assert_eq!(by_model["groups"][0]["requests"], 1);
    let (_, by_ws) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/usage?group_by=workspace")
        .await;
    assert_eq!(by_ws["groups"][0]["key"], "checkout");
    let (_, by_day) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/usage?group_by=day")
        .await;
    assert_eq!(by_day["groups"].as_array().unwrap().len(), 1);
    let (status, _) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/usage?group_by=colour")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = gw
        .app
        .as_(DEV)
        .response("GET", "/api/budgets/v1/teams/payments/usage.csv", None)
        .await;
    assert_status(&r, StatusCode::OK);
    let csv = body_text(r).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("time,team,workspace_id,caller,provider,model"));
    assert!(
        lines[1].contains(",payments,checkout,ci,stub,stub-chat,chat,10,20,0.00020100000,"),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains("4bf92f3577b34da6a3ce929d0e0e4736"));
}

#[tokio::test]
async fn soft_threshold_fires_the_webhook_once_per_period() {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Value>::new()));
    let sink = received.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
    let gw = gateway(&[("PAVED_BUDGET_ALERT_WEBHOOK", &hook_url)]).await;
    gw.price("stub-chat", "0", "10").await;
    gw.stub.set_default(Behaviour::ok().with_usage(0, 1000));
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 4, "soft_alert_percent": 50}),
    )
    .await;
    let key = gw.key("payments", LEAD, None).await;
    for expected in [
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        let r = gw.app.send(chat(&key, hello(1000))).await;
        assert_eq!(r.status(), expected);
    }
    let started = Instant::now();
    while received.lock().unwrap().is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "once per period: {got:?}");
    assert_eq!(got[0]["team"], "payments");
    assert_eq!(got[0]["spent_cents"], 2);
    let (_, view) = gw.app.as_(DEV).get("/api/budgets/v1/teams/payments").await;
    assert_eq!(view["soft_alert_crossed"], true);
}

#[tokio::test]
async fn metrics_use_the_promised_names_and_pass_promtool() {
    let gw = gateway(&[]).await;
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 1}),
    )
    .await;
    let key = gw.key("payments", LEAD, None).await;
    assert_status(&gw.app.send(chat(&key, hello(10))).await, StatusCode::OK);
    let r = gw.app.send(chat(&key, hello(1000))).await;
    assert_status(&r, StatusCode::TOO_MANY_REQUESTS);
    // Developers may not scrape; admins (and service tokens with the role) may.
    let r = gw.app.as_(DEV).response("GET", "/metrics", None).await;
    assert_status(&r, StatusCode::FORBIDDEN);
    let r = gw.app.as_(ADMIN).response("GET", "/metrics", None).await;
    assert_status(&r, StatusCode::OK);
    let text = body_text(r).await;
    for needle in [
        r#"llm_request_latency_seconds_bucket{provider="stub",model="stub-chat",team="payments",workspace_id="",request_type="chat",le="0.01"}"#,
        r#"llm_request_error_total{provider="stub",model="stub-chat",team="payments",workspace_id="",request_type="chat",error_type="budget_exceeded"} 1"#,
        r#"llm_cost_cents_total{workspace_id="",team="payments"} 0.0201"#,
        r#"llm_team_max_budget_cents{team="payments",workspace_id=""} 1"#,
        r#"llm_upstream_circuit_state{provider="stub",model="stub-chat"} 0"#,
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_token_usage_bucket",
        "llm_gateway_overhead_seconds_bucket",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(
        !text.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "no trace ids in labels"
    );
    promtool_check_metrics(&text);
}

#[test]
fn a_crash_with_reservations_in_flight_releases_them_by_ttl_after_restart() {
    let files = tempfile::tempdir().unwrap();
    let db_dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/paved.db", db_dir.path().display());
    let stub_runtime = tokio::runtime::Runtime::new().unwrap();
    let stub = Stub::new();
    let addr = stub_runtime.block_on(paved_llm_stub::spawn(stub.clone()));
    std::fs::write(files.path().join("upstreams.yaml"), upstreams(addr)).unwrap();
    let extra = [
        ("PAVED_DATABASE_URL", db.as_str()),
        ("PAVED_LLM_RESERVATION_TTL_SECS", "2"),
    ];
    let owned = vars(files.path(), &extra);

    // The first server: a budget, a key, and one slow request in flight when it dies.
    let first = tokio::runtime::Runtime::new().unwrap();
    let key = first.block_on(async {
        let borrowed: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let app = test_app_with_clock(&borrowed, mid_period_clock()).await;
        app.session_for(
            "lee",
            &[("payments", TeamRole::Lead)],
            &[PlatformRole::PlatformPm],
        )
        .await;
        let gw = Gw {
            app,
            stub: stub.clone(),
            _files: tempfile::tempdir().unwrap(),
        };
        gw.price("stub-chat", "0", "10").await;
        gw.budget(
            "payments",
            LEAD,
            json!({"period": "monthly", "limit_cents": 1}),
        )
        .await;
        let key = gw.key("payments", LEAD, None).await;
        stub.push(Behaviour::ok().with_delay_ms(60_000));
        let router = gw.app.router.clone();
        let request = chat(&key, hello(800));
        tokio::spawn(async move {
            use tower::ServiceExt;
            let _ = router.oneshot(request).await;
        });
        while stub.count() < 1 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        std::mem::forget(gw);
        key
    });
    // Kill it: every task of that server stops mid-request.
    first.shutdown_timeout(Duration::from_millis(100));

    let second = tokio::runtime::Runtime::new().unwrap();
    second.block_on(async {
        let borrowed: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let app = test_app_with_clock(&borrowed, mid_period_clock()).await;
        let ledger = &app.state.core.budgets.ledger;
        // 800 output tokens = 0.8 cents held by the dead request.
        assert_eq!(ledger.held_count(), 1);
        let (_, view) = {
            let r = app
                .as_(DEV)
                .response("GET", "/api/budgets/v1/teams/payments", None)
                .await;
            (r.status(), body_json(r).await)
        };
        assert_eq!(view["reserved_cents"], 1);
        // 0.95 cents more would cross the one-cent limit while the hold stands.
        let r = app.send(chat(&key, hello(950))).await;
        assert_status(&r, StatusCode::TOO_MANY_REQUESTS);
        let started = Instant::now();
        while app.state.core.budgets.ledger.held_count() > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the hold never expired"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = app.send(chat(&key, hello(950))).await;
        assert_status(&r, StatusCode::OK);
        app.state.core.gateway.flush().await;
        let states: Vec<String> =
            sqlx::query_scalar("SELECT state FROM llm_reservations ORDER BY created_at")
                .fetch_all(&app.state.core.db)
                .await
                .unwrap();
        assert_eq!(states, ["expired", "settled"]);
    });
    drop(stub_runtime);
}

#[tokio::test]
async fn spans_reach_the_collector_with_genai_attributes_and_the_callers_trace() {
    use tracing_subscriber::layer::SubscriberExt;
    let mut collector = fake_opentelemetry_collector::FakeCollectorServer::start()
        .await
        .unwrap();
    let (provider, tracer) = paved_server::telemetry::otlp_tracer(&collector.endpoint()).unwrap();
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
    let _guard = tracing::subscriber::set_default(subscriber);

    let vault = common::vault::TestVault::start().await;
    vault
        .root(
            "POST",
            "secret/data/platform/llm/_platform",
            json!({"data": {"stub": "sk-platform-key"}}),
        )
        .await;
    let vault_vars = vault.portal_vars();
    let extra: Vec<(&str, &str)> = vault_vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let gw = gateway_with(
        Stub::new(),
        |addr| format!("models:\n  - model: stub-chat\n    provider: stub\n    base_url: http://{addr}/v1\n    credential: llm/_platform\n    max_output_tokens: 1000\n"),
        &extra,
    )
    .await;
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 100}),
    )
    .await;
    let key = gw.key("payments", LEAD, None).await;
    // Other tests in this binary hit the same span callsites under other
    // subscribers at the same time; recompute their interest for ours.
    tracing::callsite::rebuild_interest_cache();
    let mut request = with_key(chat(&key, hello(10)), "span-check-1");
    request
        .headers_mut()
        .insert("x-paved-feature", "checkout-assistant".parse().unwrap());
    let r = gw.app.send(request).await;
    assert_status(&r, StatusCode::OK);
    // Flushing blocks until the export is done, and the export needs this
    // (single-threaded) runtime to drive its gRPC call: flush off-thread.
    let flush = || {
        let provider = provider.clone();
        tokio::task::spawn_blocking(move || provider.force_flush())
    };
    let _ = flush().await;
    // Spans arrive in export batches (the setup's request spans may come
    // first): gather until the gateway's span is there or 20 s have passed.
    let mut spans = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !spans
        .iter()
        .any(|s: &fake_opentelemetry_collector::ExportedSpan| s.name == "chat stub-chat")
        && Instant::now() < deadline
    {
        let _ = flush().await;
        spans.extend(collector.exported_spans(1, Duration::from_secs(2)).await);
    }
    let span = spans
        .iter()
        .find(|s| s.name == "chat stub-chat")
        .unwrap_or_else(|| {
            panic!(
                "no gen_ai span in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        });
    assert_eq!(
        span.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace"
    );
    assert_eq!(
        span.parent_span_id, "00f067aa0ba902b7",
        "a child of the caller's span"
    );
    assert!(
        span.kind.to_ascii_lowercase().contains("client"),
        "{}",
        span.kind
    );
    for (attribute, value) in [
        ("llm.provider", "stub"),
        ("llm.model", "stub-chat"),
        ("llm.idempotency_key", "span-check-1"),
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "stub"),
        ("gen_ai.request.model", "stub-chat"),
        ("gen_ai.usage.input_tokens", "10"),
        ("gen_ai.usage.output_tokens", "20"),
        ("server.address", "127.0.0.1"),
        ("paved.feature", "checkout-assistant"),
    ] {
        let got = span
            .attributes
            .get(attribute)
            .map(String::as_str)
            .unwrap_or("<missing>");
        assert!(
            got.contains(value),
            "{attribute} = {got}, want {value}; all: {:?}",
            span.attributes
        );
    }
    assert!(span.attributes.contains_key("gen_ai.response.model"));
    assert!(span.attributes["paved.deployment"].contains("\"stub-chat\""));
    // The provider key was read from Vault for this request: Vault's request id joins the two.
    let vault_id = span
        .attributes
        .get("paved.vault_request_id")
        .unwrap_or_else(|| panic!("no Vault request id: {:?}", span.attributes));
    let uuid = vault_id
        .split('"')
        .find(|part| part.len() == 36 && part.matches('-').count() == 4);
    assert!(uuid.is_some(), "a Vault request id (a UUID): {vault_id}");
    // The provider saw the gateway's span as its parent, in the same trace.
    let upstream = gw.stub.requests()[0].traceparent.clone().unwrap();
    assert_eq!(
        upstream,
        format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01", span.span_id)
    );
    let _ = provider.shutdown();
}

#[tokio::test]
async fn oversized_bodies_and_malformed_requests_get_clear_openai_style_errors() {
    let gw = gateway(&[("PAVED_LLM_MAX_BODY_BYTES", "2048")]).await;
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 100}),
    )
    .await;
    let key = gw.key("payments", LEAD, None).await;
    let big =
        json!({"model": "stub-chat", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let r = gw.app.send(chat(&key, big)).await;
    assert_status(&r, StatusCode::PAYLOAD_TOO_LARGE);
    let body = body_json(r).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2048 bytes"),
        "{body}"
    );
    let r = gw
        .app
        .send(
            Request::post("/llm/v1/chat/completions")
                .header(header::AUTHORIZATION, format!("Bearer {key}"))
                .body(Body::from("not json"))
                .unwrap(),
        )
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    assert_eq!(body_json(r).await["error"]["type"], "invalid_request_error");
    let r = gw
        .app
        .send(chat(&key, json!({"model": "gpt-9", "messages": []})))
        .await;
    assert_status(&r, StatusCode::NOT_FOUND);
    assert_eq!(body_json(r).await["error"]["type"], "model_not_found");
    assert_eq!(gw.stub.count(), 0, "none of these reached the provider");
}

#[tokio::test]
async fn provider_keys_come_from_vault_and_a_teams_own_key_wins() {
    let vault = common::vault::TestVault::start().await;
    vault
        .root(
            "POST",
            "secret/data/platform/llm/_platform",
            json!({"data": {"stub": "sk-platform-key"}}),
        )
        .await;
    vault
        .root(
            "POST",
            "secret/data/platform/llm/payments",
            json!({"data": {"stub": "sk-payments-own-key"}}),
        )
        .await;
    let vault_vars = vault.portal_vars();
    let mut extra: Vec<(&str, &str)> = vault_vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.push(("PAVED_LLM_CREDENTIAL_TTL_SECS", "1"));
    // The provider only knows the platform's key.
    let gw = gateway_with(
        Stub::new().require_key("sk-platform-key"),
        |addr| format!("models:\n  - model: stub-chat\n    provider: stub\n    base_url: http://{addr}/v1\n    credential: llm/_platform\n    max_output_tokens: 1000\n"),
        &extra,
    )
    .await;
    for (team, token) in [("payments", LEAD), ("search", OTHER_LEAD)] {
        let (status, _) = gw
            .budget(
                team,
                token,
                json!({"period": "monthly", "limit_cents": 100}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }

    // Team search has no key of its own: the platform's key is used, read from OpenBao.
    let search_key = gw.key("search", OTHER_LEAD, None).await;
    let r = gw.app.send(chat(&search_key, hello(10))).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(
        gw.stub.requests()[0].authorization.as_deref(),
        Some("Bearer sk-platform-key")
    );

    // Team payments' own key goes first; this provider refuses it, which is the
    // platform's credential problem (502), not the caller's key (401).
    let payments_key = gw.key("payments", LEAD, None).await;
    let r = gw.app.send(chat(&payments_key, hello(10))).await;
    assert_status(&r, StatusCode::BAD_GATEWAY);
    let body = body_json(r).await;
    assert_eq!(body["error"]["type"], "upstream_credential_error");
    // Paved's own words: the provider's text (which may describe the key) stays in the log.
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("refused the platform's credential"),
        "{body}"
    );
    assert!(!message.contains("Incorrect API key"), "{body}");
    assert_eq!(
        gw.stub.requests()[1].authorization.as_deref(),
        Some("Bearer sk-payments-own-key")
    );
    assert_eq!(gw.stub.count(), 2, "a refused credential is not retried");

    // After the lead removes the team's key, the platform key applies again (once the short cache lapses).
    vault
        .root("DELETE", "secret/metadata/platform/llm/payments", json!({}))
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = gw.app.send(chat(&payments_key, hello(10))).await;
    assert_status(&r, StatusCode::OK);
    // The keys never reach the database or an answer.
    assert!(!contains_bytes(
        &gw.app.database_bytes(),
        "sk-payments-own-key"
    ));
    assert!(!contains_bytes(&gw.app.database_bytes(), "sk-platform-key"));
}

#[tokio::test]
async fn every_budget_server_function_and_admin_route_refuses_the_wrong_role() {
    let gw = gateway(&[]).await;
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 100}),
    )
    .await;
    let developer = gw
        .app
        .session_for("dana", &[("payments", TeamRole::Member)], &[])
        .await;
    let outsider = gw
        .app
        .session_for("sid", &[("search", TeamRole::Member)], &[])
        .await;
    let form = json!({"period": "monthly", "limit_cents": 999_999, "soft_alert_percent": 80, "on_limit": "alert",
                      "allowed_models": [], "rpm_limit": null, "tpm_limit": null, "version": 1});
    // A developer of the team reads but changes nothing.
    for (name, body) in [
        ("budget_save", json!({"team": "payments", "form": form})),
        (
            "budget_workspace_save",
            json!({"team": "payments", "workspace": "checkout", "form": form}),
        ),
    ] {
        let r = gw.app.with_session(&developer).call_json(name, body).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
    }
    for (name, body) in [
        (
            "gateway_key_create",
            "team=payments&name=mine&workspace_id=",
        ),
        ("gateway_key_revoke", "team=payments&id=1"),
        ("llm_overview", ""),
        (
            "llm_price_save",
            "provider=stub&model=stub-chat&input_usd=0&output_usd=0",
        ),
    ] {
        let r = gw.app.with_session(&developer).call(name, body).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
    }
    let r = gw
        .app
        .with_session(&developer)
        .call("budget_page", "team=payments")
        .await;
    assert_status(&r, StatusCode::OK);
    // Another team sees nothing of it.
    let r = gw
        .app
        .with_session(&outsider)
        .call("budget_page", "team=payments")
        .await;
    assert_status(&r, StatusCode::FORBIDDEN);
    // Admin-only and PM/admin-only API routes.
    for (method, uri, token) in [
        ("PUT", "/api/budgets/v1/prices/stub/stub-chat", LEAD),
        ("DELETE", "/api/budgets/v1/prices/stub/stub-chat", LEAD),
        ("GET", "/api/budgets/v1/usage.csv", LEAD),
        (
            "GET",
            "/api/budgets/v1/teams/payments/usage.csv",
            OTHER_LEAD,
        ),
        ("POST", "/api/budgets/v1/teams/payments/keys", DEV),
    ] {
        let body = (method != "GET" && method != "DELETE")
            .then(|| json!({"name": "x", "input_usd_per_mtok": "0", "output_usd_per_mtok": "0"}));
        let r = gw.app.as_(token).response(method, uri, body).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {uri}");
    }
    // Nothing changed.
    let (_, view) = gw.app.as_(DEV).get("/api/budgets/v1/teams/payments").await;
    assert_eq!(
        (view["limit_cents"].as_i64(), view["version"].as_i64()),
        (Some(100), Some(1))
    );
    let (_, prices) = gw.app.as_(DEV).get("/api/budgets/v1/prices").await;
    assert!(prices
        .to_string()
        .contains("\"input_millicents_per_mtok\":10000"));
}

/// Attack: budget bypasses. A call that times out may still be billed by the
/// provider, so it costs the reserved worst case (and, without an idempotency
/// key, is not sent again); a long generation's timeout does not open the
/// shared circuit; an image cannot hide behind a short URL; unboundable
/// parts are refused before anything is held or sent.
#[tokio::test]
async fn attack_timeouts_and_media_cannot_dodge_the_budget() {
    let gw = gateway(&[
        ("PAVED_LLM_TIMEOUT_SECS", "1"),
        ("PAVED_LLM_BREAKER_FAILURES", "1"),
    ])
    .await;
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 10_000}),
    )
    .await;
    let key = gw.key("payments", LEAD, None).await;

    // A long generation's timeout leaves the circuit closed (one failure would open it).
    gw.stub.push(Behaviour::ok().with_delay_ms(3_000));
    let r = gw.app.send(chat(&key, hello(8_000))).await;
    assert_status(&r, StatusCode::GATEWAY_TIMEOUT);
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::OK);

    // Images pass (held at their ceiling, see the gateway's unit test).
    let image = json!({"model": "stub-chat", "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}}
    ]}]});
    let r = gw.app.send(chat(&key, image)).await;
    assert_status(&r, StatusCode::OK);
    // Audio cannot be bounded: refused, nothing sent, nothing held.
    let sent = gw.stub.count();
    let audio = json!({"model": "stub-chat", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    ]}]});
    let r = gw.app.send(chat(&key, audio)).await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    assert!(body_text(r).await.contains("input_audio"));
    assert_eq!(gw.stub.count(), sent);

    // 900 output tokens at $10 per million: the worst case is 0.9 cents (+ input bytes).
    let (_, before) = gw.app.as_(DEV).get("/api/budgets/v1/teams/payments").await;
    gw.stub.push(Behaviour::ok().with_delay_ms(3_000));
    let r = gw.app.send(chat(&key, hello(900))).await;
    assert_status(&r, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        gw.stub.count(),
        sent + 1,
        "a timed-out generation without an idempotency key is not sent again"
    );
    let rows = usage_rows(&gw.app).await;
    let (_, input, output, cost, status, error, _) = rows.last().unwrap().clone();
    assert_eq!((status, error.as_deref()), (504, Some("timeout")));
    assert_eq!(output, 900, "charged at the reserved worst case");
    assert!(
        input > 0 && cost >= 900 * 1_000_000,
        "cost {cost} nanocents"
    );
    let (_, after) = gw.app.as_(DEV).get("/api/budgets/v1/teams/payments").await;
    assert!(
        after["spent_nanocents"].as_i64().unwrap()
            >= before["spent_nanocents"].as_i64().unwrap() + 900 * 1_000_000
    );
}

#[tokio::test]
async fn the_feature_a_caller_names_is_recorded_and_reported_and_a_bad_one_refused() {
    let gw = gateway(&[]).await;
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 100}),
    )
    .await;
    let key = gw.key("payments", LEAD, None).await;
    let feature = |mut r: Request<Body>, f: &str| {
        r.headers_mut()
            .insert("x-paved-feature", f.parse().unwrap());
        r
    };
    // The header, twice; the body's metadata once; none once.
    for _ in 0..2 {
        let r = gw
            .app
            .send(feature(chat(&key, hello(10)), "support-chat"))
            .await;
        assert_status(&r, StatusCode::OK);
    }
    let mut body = hello(10);
    body["metadata"] = json!({"paved_feature": "code-review"});
    assert_status(&gw.app.send(chat(&key, body)).await, StatusCode::OK);
    assert_status(&gw.app.send(chat(&key, hello(10))).await, StatusCode::OK);
    // Hostile names are refused before anything is held or charged.
    for bad in ["with space", "<script>", "a,b", &"x".repeat(65)] {
        let r = gw.app.send(feature(chat(&key, hello(10)), bad)).await;
        assert_status(&r, StatusCode::BAD_REQUEST);
        let text = body_text(r).await;
        assert!(text.contains("X-Paved-Feature"), "{text}");
    }
    gw.app.state.core.gateway.flush().await;
    let features: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT feature FROM llm_usage ORDER BY id")
            .fetch_all(&gw.app.state.core.db)
            .await
            .unwrap();
    assert_eq!(
        features,
        vec![
            (Some("support-chat".to_owned()),),
            (Some("support-chat".to_owned()),),
            (Some("code-review".to_owned()),),
            (None,)
        ]
    );
    // The usage API groups by feature; the CSV carries it.
    let (status, report) = gw
        .app
        .as_(LEAD)
        .get("/api/budgets/v1/teams/payments/usage?group_by=feature")
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let groups = report["groups"].as_array().unwrap();
    let of = |k: &str| groups.iter().find(|g| g["key"] == k).cloned();
    assert_eq!(of("support-chat").unwrap()["requests"], json!(2));
    assert_eq!(of("code-review").unwrap()["requests"], json!(1));
    assert_eq!(of("").unwrap()["requests"], json!(1));
    let (status, csv) = gw
        .app
        .as_(LEAD)
        .text("GET", "/api/budgets/v1/teams/payments/usage.csv", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.lines().next().unwrap().ends_with(",feature"), "{csv}");
    assert_eq!(
        csv.lines().filter(|l| l.ends_with(",support-chat")).count(),
        2
    );
    // The Budget page charts each feature's cost per day of the period.
    let page = paved_core::budgets::page::budget_page(
        &gw.app.state.core,
        &paved_shared::auth::testing::lead("payments"),
        "payments",
    )
    .await
    .unwrap();
    let names: Vec<&str> = page.feature_days.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(names, ["", "code-review", "support-chat"]);
    for (feature, daily) in &page.feature_days {
        assert_eq!(daily.len(), page.board.days.len());
        let total: f64 = daily.iter().sum();
        let reported = of(feature).unwrap()["cost_cents"].as_f64().unwrap();
        assert!(
            (total - reported).abs() < 1e-9,
            "{feature}: {total} vs {reported}"
        );
        assert_eq!(
            daily.iter().filter(|c| **c > 0.0).count(),
            1,
            "all today: {daily:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Routing: deployments, fallbacks, other APIs

impl Gw {
    async fn price_as(&self, provider: &str, model: &str, input: &str, output: &str) {
        let (status, body) = self
            .app
            .as_(ADMIN)
            .put(
                &format!("/api/budgets/v1/prices/{provider}/{model}"),
                json!({"input_usd_per_mtok": input, "output_usd_per_mtok": output}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Team payments with `limit_cents` a month and a key.
    async fn payments_key(&self, limit_cents: i64) -> String {
        let (status, body) = self
            .budget(
                "payments",
                LEAD,
                json!({"period": "monthly", "limit_cents": limit_cents}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.key("payments", LEAD, None).await
    }
}

/// Usage rows with the routing columns: model, requested model, deployment,
/// attempts, fallbacks, status, input, output, cost.
#[allow(clippy::type_complexity)]
async fn routed_rows(
    app: &TestApp,
) -> Vec<(
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
)> {
    app.state.core.gateway.flush().await;
    sqlx::query_as(
        "SELECT model, requested_model, deployment, attempts, fallbacks, status, input_tokens, output_tokens, cost_nanocents FROM llm_usage ORDER BY id",
    )
    .fetch_all(&app.state.core.db)
    .await
    .unwrap()
}

fn header_of(r: &axum::http::Response<Body>, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_models_deployments_share_its_traffic_by_weight_and_say_who_served() {
    let west = Stub::new();
    let west_addr = paved_llm_stub::spawn(west.clone()).await;
    let gw = gateway_with(
        Stub::new(),
        move |east| {
            format!(
                "models:\n  - model: stub-chat\n    max_output_tokens: 1000\n    deployments:\n      - {{ name: east, provider: stub, base_url: \"http://{east}/v1\", price_model: stub-chat, weight: 3 }}\n      - {{ name: west, provider: stub, base_url: \"http://{west_addr}/v1\", price_model: stub-chat, weight: 1 }}\n"
            )
        },
        &[],
    )
    .await;
    let key = gw.payments_key(100_000).await;
    let n = 600;
    let mut east = 0;
    for _ in 0..n {
        let r = gw.app.send(chat(&key, hello(10))).await;
        assert_status(&r, StatusCode::OK);
        assert_eq!(header_of(&r, "x-paved-model"), "stub-chat");
        assert_eq!(header_of(&r, "x-paved-attempts"), "1");
        match header_of(&r, "x-paved-deployment").as_str() {
            "stub-chat/east" => east += 1,
            "stub-chat/west" => {}
            other => panic!("served by {other:?}"),
        }
    }
    // Weights 3:1 → three quarters to east (±4 standard deviations).
    let share = f64::from(east) / f64::from(n);
    assert!((share - 0.75).abs() < 0.07, "east served {share}");
    assert_eq!(gw.stub.count(), east as usize);
    assert_eq!(west.count(), (n - east) as usize);
    let rows = routed_rows(&gw.app).await;
    let east_rows = rows
        .iter()
        .filter(|r| r.2.as_deref() == Some("stub-chat/east"))
        .count();
    assert_eq!(
        east_rows, east as usize,
        "the usage rows name the deployment"
    );
    assert!(rows.iter().all(|r| r.1.is_none() && r.3 == 1));
}

/// `stub-chat` on stub A falls back to `stub-big` (twice the output price) on stub B.
fn fallback_routes(a: std::net::SocketAddr, b: std::net::SocketAddr) -> String {
    format!(
        "models:\n  - model: stub-chat\n    provider: stub\n    base_url: http://{a}/v1\n    max_output_tokens: 1000\n    fallbacks: [stub-big]\n  - model: stub-big\n    provider: stub\n    base_url: http://{b}/v1\n    max_output_tokens: 1000\n"
    )
}

#[tokio::test]
async fn every_failure_class_falls_back_to_the_next_model_and_names_it() {
    let big = Stub::new();
    let big_addr = paved_llm_stub::spawn(big.clone()).await;
    let gw = gateway_with(
        Stub::new(),
        move |a| fallback_routes(a, big_addr),
        &[
            ("PAVED_LLM_TIMEOUT_SECS", "1"),
            ("PAVED_LLM_BREAKER_FAILURES", "100"),
        ],
    )
    .await;
    gw.price("stub-chat", "0", "10").await;
    gw.price("stub-big", "0", "20").await;
    let key = gw.payments_key(100_000).await;
    big.set_default(Behaviour::ok().with_usage(5, 100));
    let classes = [
        ("429", Behaviour::status(429).with_retry_after("1")),
        ("500", Behaviour::status(500)),
        ("503", Behaviour::status(503)),
        ("529", Behaviour::status(529)),
        ("timeout", Behaviour::ok().with_delay_ms(1500)),
    ];
    for (class, behaviour) in &classes {
        gw.stub.push(behaviour.clone());
        let r = gw.app.send(chat(&key, hello(1000))).await;
        assert_status(&r, StatusCode::OK);
        assert_eq!(header_of(&r, "x-paved-model"), "stub-big", "{class}");
        assert_eq!(header_of(&r, "x-paved-attempts"), "2", "{class}");
        let body = body_json(r).await;
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "Hello from the stub."
        );
    }
    assert_eq!(
        gw.stub.count(),
        classes.len(),
        "one attempt each at stub-chat"
    );
    let rows = routed_rows(&gw.app).await;
    let served: Vec<_> = rows.iter().filter(|r| r.5 == 200).collect();
    assert_eq!(served.len(), classes.len());
    for (row, (class, _)) in served.iter().zip(&classes) {
        assert_eq!(row.0, "stub-big");
        assert_eq!(row.1.as_deref(), Some("stub-chat"), "the model asked for");
        assert_eq!(row.3, 2);
        assert_eq!(
            row.4.as_deref(),
            Some(format!("stub-chat {class}").as_str()),
            "why the first was passed over"
        );
        // Charged at the fallback's price: 100 output tokens × $20/M.
        assert_eq!(row.8, 100 * 2_000_000);
    }
    // The timed-out attempt may have been billed: its worst case is a row of its own.
    let timed_out: Vec<_> = rows.iter().filter(|r| r.5 == 504).collect();
    assert_eq!(timed_out.len(), 1);
    assert_eq!(timed_out[0].0, "stub-chat");
    assert_eq!(timed_out[0].7, 1000, "worst case output");
    assert_eq!(gw.app.state.core.budgets.ledger.held_count(), 0);

    // A client error is the request's fault: no fallback, the provider's answer passed on.
    gw.stub
        .push(Behaviour::status(400).with_error_message("bad temperature"));
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    assert!(body_text(r).await.contains("bad temperature"));
    assert_eq!(big.count(), classes.len());

    // A deployment nobody answers at: the fallback serves.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let gw2 = gateway_with(
        Stub::new(),
        move |_| fallback_routes(closed_addr, big_addr),
        &[],
    )
    .await;
    gw2.price("stub-big", "0", "20").await;
    let key2 = gw2.payments_key(100_000).await;
    let r = gw2.app.send(chat(&key2, hello(10))).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(header_of(&r, "x-paved-model"), "stub-big");
    let rows = routed_rows(&gw2.app).await;
    assert_eq!(rows[0].4.as_deref(), Some("stub-chat unreachable"));
}

#[tokio::test]
async fn two_hundred_concurrent_fallbacks_to_a_dearer_model_never_overspend() {
    let big = Stub::new();
    let big_addr = paved_llm_stub::spawn(big.clone()).await;
    let gw = gateway_with(
        Stub::new(),
        move |a| fallback_routes(a, big_addr),
        &[("PAVED_LLM_BREAKER_FAILURES", "1000")],
    )
    .await;
    // stub-chat's worst case is 1 cent, stub-big's 2 cents: every fallback
    // must grow its hold by a cent, atomically, or be refused.
    gw.price("stub-chat", "0", "10").await;
    gw.price("stub-big", "0", "20").await;
    gw.stub
        .set_default(Behaviour::status(500).with_delay_ms(20));
    big.set_default(Behaviour::ok().with_usage(0, 1000).with_delay_ms(30));
    let key = gw.payments_key(51).await;
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let router = gw.app.router.clone();
        let request = chat(&key, hello(1000));
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let r = router.oneshot(request).await.unwrap();
            let status = r.status();
            (status, body_json(r).await)
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(body["error"]["type"], "budget_exceeded", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok + refused, 200);
    assert!(ok >= 1, "some fallbacks fit");
    assert_eq!(
        big.count(),
        ok,
        "nothing was sent that the budget could not pay"
    );
    let rows = routed_rows(&gw.app).await;
    let spent: i64 = rows.iter().map(|r| r.8).sum();
    assert_eq!(
        spent,
        ok as i64 * 2_000_000_000,
        "each fallback costs its 2 cents"
    );
    assert!(
        spent <= 51 * 1_000_000_000,
        "spend {spent} never passes the limit"
    );
    for row in rows.iter().filter(|r| r.5 == 200) {
        assert_eq!(
            (row.0.as_str(), row.1.as_deref()),
            ("stub-big", Some("stub-chat"))
        );
        assert!(
            row.4.as_deref().unwrap().starts_with("stub-chat "),
            "{row:?}"
        );
    }
    assert_eq!(gw.app.state.core.budgets.ledger.held_count(), 0);
}

#[tokio::test]
async fn a_prompt_too_long_for_the_model_goes_to_its_larger_one() {
    let big = Stub::new();
    let big_addr = paved_llm_stub::spawn(big.clone()).await;
    let gw = gateway_with(
        Stub::new(),
        move |a| {
            format!(
                "models:\n  - {{ model: stub-chat, provider: stub, base_url: \"http://{a}/v1\", max_output_tokens: 1000, context_window: 100, context_window_fallbacks: [stub-big] }}\n  - {{ model: stub-big, provider: stub, base_url: \"http://{big_addr}/v1\", context_window: 100000 }}\n"
            )
        },
        &[],
    )
    .await;
    gw.price("stub-big", "0.10", "10").await;
    let key = gw.payments_key(100_000).await;
    // About 2,000 bytes: clearly more than 100 tokens.
    let long = "lorem ipsum ".repeat(170);
    let r = gw
        .app
        .send(chat(&key, json!({"model": "stub-chat", "max_tokens": 10, "messages": [{"role": "user", "content": long}]})))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(header_of(&r, "x-paved-model"), "stub-big");
    assert_eq!(gw.stub.count(), 0, "the small model was not asked");
    // A short prompt the provider still finds too long.
    gw.stub.push(
        Behaviour::status(400)
            .with_error_code("context_length_exceeded")
            .with_error_message("This model's maximum context length is 100 tokens."),
    );
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(header_of(&r, "x-paved-model"), "stub-big");
    let rows = routed_rows(&gw.app).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].4.as_deref(), Some("stub-chat context window"));
}

/// `claude` served by Anthropic's API on the stub, `stub-chat` by OpenAI's.
fn anthropic_routes(addr: std::net::SocketAddr) -> String {
    format!(
        "models:\n  - {{ model: claude-sonnet-4-5, provider: anthropic, api: anthropic, base_url: \"http://{addr}\", max_output_tokens: 2000 }}\n  - {{ model: stub-chat, provider: stub, base_url: \"http://{addr}/v1\", max_output_tokens: 1000 }}\n"
    )
}

#[tokio::test]
async fn chat_completions_are_served_by_anthropic_translated_both_ways() {
    let gw = gateway_with(Stub::new(), anthropic_routes, &[]).await;
    gw.price_as("anthropic", "claude-sonnet-4-5", "3", "15")
        .await;
    let key = gw.payments_key(100_000).await;
    gw.stub.set_default(Behaviour::ok().with_usage(12, 8));
    let r = gw
        .app
        .send(chat(
            &key,
            json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"}]}),
        ))
        .await;
    assert_status(&r, StatusCode::OK);
    let body = body_json(r).await;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the stub."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 12);
    let sent = &gw.stub.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.body["system"], "Be brief.");
    assert_eq!(sent.body["max_tokens"], 100);
    assert_eq!(sent.anthropic_version.as_deref(), Some("2023-06-01"));

    // Tools: a tool_use block becomes an OpenAI tool call.
    let r = gw
        .app
        .send(chat(&key, json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}]})))
        .await;
    let body = body_json(r).await;
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["city"], "Paris");

    // Streaming: Anthropic's events arrive as OpenAI chunks; usage from message_delta.
    let r = gw
        .app
        .send(chat(
            &key,
            json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "hi"}]}),
        ))
        .await;
    assert_status(&r, StatusCode::OK);
    let text = body_text(r).await;
    let mut content = String::new();
    let mut usage = Value::Null;
    for line in text.lines().filter_map(|l| l.strip_prefix("data: ")) {
        if line == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(line).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        content.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
        if chunk["usage"].is_object() {
            usage = chunk["usage"].clone();
        }
    }
    assert_eq!(content, "Hello from the stub.");
    assert_eq!(
        (
            usage["prompt_tokens"].as_i64(),
            usage["completion_tokens"].as_i64()
        ),
        (Some(12), Some(8))
    );
    assert!(text.trim_end().ends_with("data: [DONE]"));
    let rows = routed_rows(&gw.app).await;
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert_eq!(row.0, "claude-sonnet-4-5");
        assert_eq!(row.5, 200);
    }
    // 12 input × $3/M + 8 output × $15/M, in nanocents.
    assert_eq!(
        (rows[2].6, rows[2].7, rows[2].8),
        (12, 8, 12 * 300_000 + 8 * 1_500_000)
    );
}

fn messages(key: &str, body: Value) -> Request<Body> {
    Request::post("/llm/anthropic/v1/messages")
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn anthropics_messages_api_passes_through_with_exact_accounting() {
    let gw = gateway_with(Stub::new(), anthropic_routes, &[]).await;
    gw.price_as("anthropic", "claude-sonnet-4-5", "3", "15")
        .await;
    let key = gw.payments_key(100_000).await;
    gw.stub.set_default(Behaviour::ok().with_usage(20, 6));
    let hi = json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]});
    let r = gw.app.send(messages(&key, hi.clone())).await;
    assert_status(&r, StatusCode::OK);
    let body = body_json(r).await;
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], "Hello from the stub.");
    assert_eq!(gw.stub.requests()[0].path, "/v1/messages");

    // Streamed: Anthropic's own events, unchanged.
    let mut streamed = hi.clone();
    streamed["stream"] = json!(true);
    let r = gw.app.send(messages(&key, streamed)).await;
    let text = body_text(r).await;
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    assert!(events.contains(&"message_delta"));

    // 529 (overloaded) is retried.
    gw.stub.push(Behaviour::status(529));
    let r = gw.app.send(messages(&key, hi.clone())).await;
    assert_status(&r, StatusCode::OK);

    // Errors in Anthropic's shape, whoever refuses.
    let r = gw.app.send(messages("pvg_not-a-key", hi.clone())).await;
    assert_status(&r, StatusCode::UNAUTHORIZED);
    let body = body_json(r).await;
    assert_eq!(
        (body["type"].as_str(), body["error"]["type"].as_str()),
        (Some("error"), Some("authentication_error"))
    );
    let r = gw
        .app
        .send(messages(
            &key,
            json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
        ))
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    let body = body_json(r).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("max_tokens"));
    let r = gw
        .app
        .send(messages(
            &key,
            json!({"model": "stub-chat", "max_tokens": 5, "messages": []}),
        ))
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    let r = gw
        .app
        .send(messages(
            &key,
            json!({"model": "claude-sonnet-4-5", "max_tokens": 5,
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            "messages": [{"role": "user", "content": "hi"}]}),
        ))
        .await;
    assert_status(&r, StatusCode::BAD_REQUEST);

    let rows = routed_rows(&gw.app).await;
    let served: Vec<_> = rows.iter().filter(|r| r.5 == 200).collect();
    assert_eq!(served.len(), 3);
    for row in served {
        assert_eq!(
            (row.6, row.7),
            (20, 6),
            "usage from the answer and the stream"
        );
        assert_eq!(row.8, 20 * 300_000 + 6 * 1_500_000);
    }
    gw.budget(
        "payments",
        LEAD,
        json!({"period": "monthly", "limit_cents": 0}),
    )
    .await;
    let r = gw.app.send(messages(&key, hi)).await;
    assert_status(&r, StatusCode::TOO_MANY_REQUESTS);
    let body = body_json(r).await;
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["paved_code"], "budget_exceeded");
}

fn responses(key: &str, body: Value) -> Request<Body> {
    Request::post("/llm/v1/responses")
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn the_responses_api_is_charged_exactly_and_what_cannot_be_bounded_refused() {
    let gw = gateway(&[]).await;
    let key = gw.payments_key(100_000).await;
    gw.stub.set_default(Behaviour::ok().with_usage(9, 4));
    let r = gw
        .app
        .send(responses(
            &key,
            json!({"model": "stub-chat", "input": "hi", "max_output_tokens": 50}),
        ))
        .await;
    assert_status(&r, StatusCode::OK);
    let body = body_json(r).await;
    assert_eq!(body["object"], "response");
    assert_eq!(gw.stub.requests()[0].path, "/v1/responses");
    let r = gw
        .app
        .send(responses(
            &key,
            json!({"model": "stub-chat", "input": "hi", "stream": true}),
        ))
        .await;
    let text = body_text(r).await;
    assert!(text.contains("response.completed"), "{text}");
    for (field, value) in [
        ("previous_response_id", json!("resp_1")),
        ("background", json!(true)),
        ("tools", json!([{"type": "web_search"}])),
    ] {
        let mut body = json!({"model": "stub-chat", "input": "hi"});
        body[field] = value;
        let r = gw.app.send(responses(&key, body)).await;
        assert_status(&r, StatusCode::BAD_REQUEST);
        let body = body_json(r).await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not accepted"),
            "{field}: {body}"
        );
    }
    assert_eq!(gw.stub.count(), 2);
    let rows = routed_rows(&gw.app).await;
    let served: Vec<_> = rows.iter().filter(|r| r.5 == 200).collect();
    assert_eq!(served.len(), 2);
    for row in served {
        assert_eq!((row.6, row.7), (9, 4));
        assert_eq!(row.8, 9 * 10_000 + 4 * 1_000_000);
    }
}

#[tokio::test]
async fn a_stream_without_usage_or_cut_off_or_left_is_still_charged() {
    let gw = gateway(&[]).await;
    let key = gw.payments_key(100_000).await;
    let body = json!({"model": "stub-chat", "max_tokens": 1000, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let input_bound = i64::try_from(body.to_string().len()).unwrap();
    // Ends cleanly without usage: the prompt's bound and the counted output.
    gw.stub.push(Behaviour::ok().without_usage());
    let r = gw.app.send(chat(&key, body.clone())).await;
    let text = body_text(r).await;
    assert!(text.contains("Hello"), "{text}");
    // Breaks off: the worst case.
    gw.stub.push(Behaviour::ok().cut_after(2));
    let r = gw.app.send(chat(&key, body.clone())).await;
    let _ = axum::body::to_bytes(r.into_body(), usize::MAX).await;
    // The caller leaves after the first chunk: the provider's own usage, read to the end.
    gw.stub
        .push(Behaviour::ok().with_usage(3, 42).with_delay_ms(200));
    let r = gw.app.send(chat(&key, body.clone())).await;
    {
        use http_body_util::BodyExt;
        let mut b = r.into_body();
        let _ = b.frame().await;
    }
    for _ in 0..100 {
        if routed_rows(&gw.app).await.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = routed_rows(&gw.app).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    let reply_bytes = i64::try_from("Hello from the stub.".len()).unwrap();
    assert_eq!(
        (rows[0].6, rows[0].7),
        (input_bound, reply_bytes),
        "counted output"
    );
    assert!(rows[0].8 > 0);
    assert_eq!(
        (rows[1].5, rows[1].6, rows[1].7),
        (502, input_bound, 1000),
        "worst case"
    );
    assert_eq!(
        (rows[2].6, rows[2].7),
        (3, 42),
        "what the provider produced"
    );
    assert_eq!(gw.app.state.core.budgets.ledger.held_count(), 0);
}

// ---------------------------------------------------------------------------
// Cache, guardrails, request logs

impl Gw {
    async fn settings(&self, team: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.app
            .as_(token)
            .put(
                &format!("/api/budgets/v1/teams/{team}/gateway-settings"),
                body,
            )
            .await
    }
}

fn with_header(mut request: Request<Body>, name: &'static str, value: &str) -> Request<Body> {
    request.headers_mut().insert(name, value.parse().unwrap());
    request
}

#[tokio::test]
async fn cached_answers_are_free_never_shared_across_teams_and_their_savings_shown() {
    let gw = gateway(&[]).await;
    let key = gw.payments_key(100_000).await;
    let (status, saved) = gw
        .settings("payments", LEAD, json!({"cache_ttl_secs": 300}))
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    gw.stub.set_default(Behaviour::ok().with_usage(10, 20));
    let ask = |user: &str| {
        json!({"model": "stub-chat", "max_tokens": 50, "temperature": 0, "user": user,
               "messages": [{"role": "user", "content": "What is Paved?"}]})
    };
    let r = gw
        .app
        .send(with_header(
            chat(&key, ask("ana")),
            "x-paved-feature",
            "faq",
        ))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(header_of(&r, "x-paved-cache"), "miss");
    let first = body_json(r).await;
    // The same question, fields in another order, another user: answered from the cache.
    let reordered = json!({"messages": [{"content": "What is Paved?", "role": "user"}], "user": "bo",
                           "temperature": 0, "max_tokens": 50, "model": "stub-chat"});
    let r = gw
        .app
        .send(with_header(chat(&key, reordered), "x-paved-feature", "faq"))
        .await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(header_of(&r, "x-paved-cache"), "hit");
    assert_eq!(body_json(r).await, first);
    assert_eq!(gw.stub.count(), 1, "the provider was asked once");
    // no-cache asks the provider again; no-store neither reads nor keeps.
    let r = gw
        .app
        .send(with_header(
            chat(&key, ask("ana")),
            "cache-control",
            "no-cache",
        ))
        .await;
    assert_eq!(header_of(&r, "x-paved-cache"), "miss");
    assert_eq!(gw.stub.count(), 2);
    let r = gw
        .app
        .send(with_header(
            chat(&key, ask("ana")),
            "cache-control",
            "no-store",
        ))
        .await;
    assert_eq!(header_of(&r, "x-paved-cache"), "");
    assert_eq!(gw.stub.count(), 3);
    // Streams are not cached.
    let mut streamed = ask("ana");
    streamed["stream"] = json!(true);
    let r = gw.app.send(chat(&key, streamed)).await;
    let _ = body_text(r).await;
    assert_eq!(gw.stub.count(), 4);
    // Another team, even asking for the cache, never gets payments' answer.
    gw.budget(
        "search",
        OTHER_LEAD,
        json!({"period": "monthly", "limit_cents": 1000}),
    )
    .await;
    let search_key = gw.key("search", OTHER_LEAD, None).await;
    let r = gw
        .app
        .send(with_header(
            chat(&search_key, ask("ana")),
            "cache-control",
            "max-age=600",
        ))
        .await;
    assert_eq!(header_of(&r, "x-paved-cache"), "miss");
    assert_eq!(gw.stub.count(), 5);
    let r = gw
        .app
        .send(with_header(
            chat(&search_key, ask("ana")),
            "cache-control",
            "max-age=600",
        ))
        .await;
    assert_eq!(
        header_of(&r, "x-paved-cache"),
        "hit",
        "a request opts in on its own"
    );

    gw.app.state.core.gateway.flush().await;
    let hits: Vec<(String, i64, i64, i64)> = sqlx::query_as(
        "SELECT team, cost_nanocents, saved_nanocents, cache_hit FROM llm_usage WHERE cache_hit = 1 ORDER BY id",
    )
    .fetch_all(&gw.app.state.core.db)
    .await
    .unwrap();
    let cost = 10 * 10_000 + 20 * 1_000_000;
    assert_eq!(
        hits,
        vec![
            ("payments".to_owned(), 0, cost, 1),
            ("search".to_owned(), 0, cost, 1)
        ],
        "hits cost nothing and record what they saved"
    );
    let (status, savings) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/cache-savings")
        .await;
    assert_eq!(status, StatusCode::OK, "{savings}");
    assert_eq!(savings["features"][0]["feature"], "faq");
    assert_eq!(savings["features"][0]["hits"], 1);
    assert!(
        (savings["features"][0]["saved_cents"].as_f64().unwrap() - cost as f64 / 1e9).abs() < 1e-9
    );
    let (_, view) = gw.app.as_(DEV).get("/api/budgets/v1/teams/payments").await;
    // Spent: the four answers from the provider; the hit added nothing.
    assert_eq!(view["spent_cents"], json!(1));
}

#[tokio::test]
async fn guardrails_redact_block_or_report_and_never_keep_the_text() {
    let gw = gateway(&[]).await;
    let key = gw.payments_key(100_000).await;
    let secret =
        "Mail ana@example.com, card 4111 1111 1111 1111, key sk-proj-Q7xT2mVb9LkZ3nWp8RsY4dHc";
    let ask = |text: &str| json!({"model": "stub-chat", "max_tokens": 20, "messages": [{"role": "user", "content": text}]});
    // A developer cannot change them; a lead can; bad values are refused by field.
    let (status, _) = gw
        .settings(
            "payments",
            DEV,
            json!({"guardrail_prompt": "block", "guardrail_detectors": ["email"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = gw
        .settings(
            "payments",
            LEAD,
            json!({"guardrail_prompt": "redact", "guardrail_detectors": ["ssn"]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("unknown detector ssn"), "{body}");
    let all = json!([
        "email",
        "card_number",
        "api_key",
        "phone",
        "iban",
        "aws_key",
        "private_key"
    ]);

    // Redact: the provider sees placeholders.
    gw.settings(
        "payments",
        LEAD,
        json!({"guardrail_prompt": "redact", "guardrail_detectors": all}),
    )
    .await;
    let r = gw.app.send(chat(&key, ask(secret))).await;
    assert_status(&r, StatusCode::OK);
    let sent = gw.stub.requests()[0].body["messages"][0]["content"].clone();
    let sent = sent.as_str().unwrap();
    assert!(
        sent.contains("[EMAIL]") && sent.contains("[CARD]") && sent.contains("[API_KEY]"),
        "{sent}"
    );
    assert!(
        !sent.contains("ana@example.com") && !sent.contains("4111") && !sent.contains("sk-proj"),
        "{sent}"
    );
    // Harmless look-alikes pass untouched.
    let plain = "Release 1.2.3 ships on 2024-01-15; order 1234567812345678 at task-force.";
    let r = gw.app.send(chat(&key, ask(plain))).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(gw.stub.requests()[1].body["messages"][0]["content"], plain);

    // Block: refused before anything is held or sent, naming what, never quoting it.
    gw.settings(
        "payments",
        LEAD,
        json!({"guardrail_prompt": "block", "guardrail_detectors": all}),
    )
    .await;
    let r = gw.app.send(chat(&key, ask(secret))).await;
    assert_status(&r, StatusCode::BAD_REQUEST);
    let body = body_json(r).await;
    assert_eq!(body["error"]["type"], "guardrail_blocked");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("email address") && message.contains("card number"),
        "{message}"
    );
    assert!(!message.contains("ana@example.com"), "{message}");
    assert_eq!(gw.stub.count(), 2);

    // Report only, on prompts and answers: sent as written, findings recorded.
    gw.settings("payments", LEAD, json!({"guardrail_prompt": "report", "guardrail_response": "redact", "guardrail_detectors": all}))
        .await;
    gw.stub
        .push(Behaviour::ok().with_reply("Write to bo@example.org or call +44 20 7946 0958."));
    let r = gw.app.send(chat(&key, ask("hi ana@example.com"))).await;
    let body = body_json(r).await;
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        answer, "Write to [EMAIL] or call [PHONE].",
        "the answer is redacted"
    );
    assert_eq!(
        gw.stub.requests()[2].body["messages"][0]["content"],
        "hi ana@example.com"
    );

    gw.app.state.core.gateway.flush().await;
    let rows: Vec<(i64, Option<String>, i64)> =
        sqlx::query_as("SELECT status, guardrails, cost_nanocents FROM llm_usage ORDER BY id")
            .fetch_all(&gw.app.state.core.db)
            .await
            .unwrap();
    assert_eq!(
        rows[0].1.as_deref(),
        Some("prompt api_key:1,card_number:1,email:1 redacted")
    );
    assert_eq!(rows[1].1, None);
    assert_eq!(
        (rows[2].0, rows[2].1.as_deref(), rows[2].2),
        (
            400,
            Some("prompt api_key:1,card_number:1,email:1 blocked"),
            0
        )
    );
    assert_eq!(
        rows[3].1.as_deref(),
        Some("prompt email:1 reported; response email:1,phone:1 redacted")
    );
    // Nothing Paved stores holds the text itself.
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT COALESCE(guardrails, '') || COALESCE(error_type, '') || COALESCE(fallbacks, '') FROM llm_usage",
    )
    .fetch_all(&gw.app.state.core.db)
    .await
    .unwrap();
    assert!(dump.iter().all(|d| !d.contains('@') && !d.contains("4111")));
}

#[tokio::test]
async fn request_logs_are_masked_shown_to_the_team_only_and_deleted_after_retention() {
    let gw = gateway(&[]).await;
    let key = gw.payments_key(100_000).await;
    let ask = json!({"model": "stub-chat", "max_tokens": 20, "messages": [{"role": "user", "content": "reach ana@example.com with sk-proj-Q7xT2mVb9LkZ3nWp8RsY4dHc"}]});
    // Off by default: nothing kept.
    gw.app.send(chat(&key, ask.clone())).await;
    let (status, body) = gw
        .settings(
            "payments",
            LEAD,
            json!({"log_requests": true, "log_bodies": true, "log_retention_days": 2}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = gw
        .app
        .send(with_header(
            chat(&key, ask.clone()),
            "x-paved-feature",
            "support-bot",
        ))
        .await;
    assert_status(&r, StatusCode::OK);
    gw.app.state.core.gateway.flush().await;
    let (status, logs) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/request-logs")
        .await;
    assert_eq!(status, StatusCode::OK, "{logs}");
    let entries = logs["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{logs}");
    let entry = &entries[0];
    assert_eq!(entry["feature"], "support-bot");
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["model"], "stub-chat");
    let request = entry["request_body"].as_str().unwrap();
    assert!(
        request.contains("[EMAIL]") && request.contains("[API_KEY]"),
        "{request}"
    );
    assert!(
        !request.contains("ana@example.com") && !request.contains("sk-proj"),
        "{request}"
    );
    assert!(entry["response_body"]
        .as_str()
        .unwrap()
        .contains("Hello from the stub."));
    let (status, _) = gw
        .app
        .as_(OTHER_LEAD)
        .get("/api/budgets/v1/teams/payments/request-logs")
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another team's lead sees nothing"
    );
    // Without bodies: the entry, not the text.
    gw.settings(
        "payments",
        LEAD,
        json!({"log_requests": true, "log_retention_days": 2}),
    )
    .await;
    gw.app.send(chat(&key, ask.clone())).await;
    gw.app.state.core.gateway.flush().await;
    let (_, logs) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/request-logs")
        .await;
    assert_eq!(logs["entries"].as_array().unwrap().len(), 2);
    assert!(logs["entries"][0]["request_body"].is_null());

    // Retention: entries older than the team's two days go, the rest stay.
    let db = &gw.app.state.core.db;
    let now = gw.app.state.core.budgets.ledger.now_ms();
    for (team, age_days) in [
        ("payments", 3),
        ("payments", 1),
        ("search", 6),
        ("search", 8),
    ] {
        sqlx::query("INSERT INTO llm_request_logs (team, at, request_type, model, status, latency_ms) VALUES (?1, ?2, 'chat', 'stub-chat', 200, 1)")
            .bind(team)
            .bind(now - age_days * 86_400_000)
            .execute(db)
            .await
            .unwrap();
    }
    let deleted = paved_core::gateway::settings::purge_request_logs(db, now)
        .await
        .unwrap();
    // payments keeps 2 days (the 3-day-old goes); search has no settings: 7 days (the 8-day-old goes).
    assert_eq!(deleted, 2);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM llm_request_logs")
        .fetch_one(db)
        .await
        .unwrap();
    assert_eq!(left, 4);
}

#[tokio::test]
async fn a_rotated_provider_key_takes_over_without_downtime_and_old_keys_are_reminded() {
    let vault = common::vault::TestVault::start().await;
    let set_key = |key: &'static str| {
        let vault = &vault;
        async move {
            vault
                .root(
                    "POST",
                    "secret/data/platform/llm/payments",
                    json!({"data": {"stub": key}}),
                )
                .await;
        }
    };
    set_key("sk-old-payments").await;
    let vault_vars = vault.portal_vars();
    let mut extra: Vec<(&str, &str)> = vault_vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    extra.push(("PAVED_LLM_CREDENTIAL_TTL_SECS", "1"));
    // Keys are read again once the one-second cache lapses.
    let lapse = || tokio::time::sleep(Duration::from_millis(1100));
    let gw = gateway_with(
        Stub::new().require_key("sk-old-payments"),
        upstreams,
        &extra,
    )
    .await;
    let key = gw.payments_key(100_000).await;
    let auth = |gw: &Gw| -> Vec<String> {
        gw.stub
            .requests()
            .iter()
            .map(|r| r.authorization.clone().unwrap_or_default())
            .collect()
    };
    assert_status(&gw.app.send(chat(&key, hello(10))).await, StatusCode::OK);
    // The lead rotates the key in Vault before the provider knows it: the old one keeps serving.
    set_key("sk-new-payments").await;
    lapse().await;
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::OK);
    assert_eq!(
        auth(&gw)[1..],
        ["Bearer sk-new-payments", "Bearer sk-old-payments"],
        "the new key first, then the previous one"
    );
    // The provider activates the new key: it answers, and the old one is no longer used.
    gw.stub.accept_keys(&["sk-old-payments", "sk-new-payments"]);
    lapse().await;
    assert_status(&gw.app.send(chat(&key, hello(10))).await, StatusCode::OK);
    gw.stub.accept_keys(&["sk-new-payments"]);
    assert_status(&gw.app.send(chat(&key, hello(10))).await, StatusCode::OK);
    assert_eq!(
        auth(&gw)[3..],
        ["Bearer sk-new-payments", "Bearer sk-new-payments"]
    );

    // Ages against the team's policy, and one reminder per version of the keys.
    let db = &gw.app.state.core.db;
    let now = paved_core::now_unix();
    sqlx::query("INSERT INTO secrets (team, holder, name, current_version, created_at, created_by, updated_at, updated_by) VALUES ('payments', '_llm', 'provider-keys', 3, ?1, 'lee', ?1, 'lee')")
        .bind(now - 100 * 86_400)
        .execute(db)
        .await
        .unwrap();
    let (_, ages) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/provider-keys")
        .await;
    assert_eq!(ages["own_keys"]["age_days"], 100);
    assert_eq!(ages["own_keys"]["overdue"], false, "no policy yet");
    let (status, body) = gw
        .settings("payments", LEAD, json!({"key_rotation_days": 90}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, ages) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/provider-keys")
        .await;
    assert_eq!(
        (
            ages["own_keys"]["rotation_days"].as_i64(),
            ages["own_keys"]["overdue"].as_bool()
        ),
        (Some(90), Some(true))
    );
    use paved_core::gateway::settings::remind_key_rotations;
    assert_eq!(remind_key_rotations(db, now).await.unwrap(), 1);
    assert_eq!(
        remind_key_rotations(db, now).await.unwrap(),
        0,
        "once per version"
    );
    let reminders: Vec<(String, String)> =
        sqlx::query_as("SELECT recipient, title FROM notifications WHERE origin = 'llm-gateway'")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(
        reminders,
        vec![(
            "group:default/payments".to_owned(),
            "Rotate the LLM provider keys of team payments".to_owned()
        )]
    );
    // Rotated: fresh keys are not due.
    sqlx::query("UPDATE secrets SET current_version = 4, updated_at = ?1 WHERE holder = '_llm'")
        .bind(now)
        .execute(db)
        .await
        .unwrap();
    assert_eq!(remind_key_rotations(db, now).await.unwrap(), 0);
    let (_, ages) = gw
        .app
        .as_(DEV)
        .get("/api/budgets/v1/teams/payments/provider-keys")
        .await;
    assert_eq!(ages["own_keys"]["overdue"], false);
    let (status, _) = gw
        .app
        .as_(OTHER_LEAD)
        .get("/api/budgets/v1/teams/payments/provider-keys")
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

// ---------------------------------------------------------------------------
// The observability pipeline: audit and billing export, sampling, Vault ids

#[tokio::test]
async fn audit_entries_and_billing_events_are_exported_as_json_lines_joined_by_trace() {
    use tracing_subscriber::layer::SubscriberExt;
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("audit.jsonl");
    let export = paved_server::audit_export::AuditExport::lines(sink.to_str().unwrap()).unwrap();
    let subscriber = tracing_subscriber::registry().with(export.layer());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let gw = gateway(&[]).await;
    let key = gw.payments_key(100_000).await;
    let r = gw.app.send(chat(&key, hello(10))).await;
    assert_status(&r, StatusCode::OK);
    gw.app.state.core.gateway.flush().await;
    let lines: Vec<Value> = std::fs::read_to_string(&sink)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let audit = lines
        .iter()
        .find(|l| l["kind"] == "audit" && l["action"] == "budget.set")
        .unwrap_or_else(|| panic!("no budget audit entry in {lines:?}"));
    assert_eq!(audit["object"], "team:payments");
    assert!(audit["actor"].as_str().unwrap().contains("lead"), "{audit}");
    assert!(audit["at"].as_str().unwrap().ends_with('Z'), "{audit}");
    let billing = lines
        .iter()
        .find(|l| l["kind"] == "billing")
        .unwrap_or_else(|| panic!("no billing event in {lines:?}"));
    assert_eq!(billing["team"], "payments");
    assert_eq!(billing["model"], "stub-chat");
    assert_eq!(
        billing["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace"
    );
    let rows = usage_rows(&gw.app).await;
    assert_eq!(billing["cost_nanocents"].as_i64(), Some(rows[0].3));
    // The gateway key never appears.
    assert!(!std::fs::read_to_string(&sink).unwrap().contains(&key));
}

#[tokio::test]
async fn billing_events_reach_the_collector_as_otlp_logs_and_sampling_never_drops_usage() {
    use tracing_subscriber::layer::SubscriberExt;
    let mut collector = fake_opentelemetry_collector::FakeCollectorServer::start()
        .await
        .unwrap();
    let (export, logs) =
        paved_server::audit_export::AuditExport::otlp(&collector.endpoint()).unwrap();
    // No new trace is sampled; usage and billing must not depend on it.
    let (traces, tracer) =
        paved_server::telemetry::otlp_tracer_sampled(&collector.endpoint(), 0.0).unwrap();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(export.layer());
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    let gw = gateway(&[]).await;
    let key = gw.payments_key(100_000).await;
    for _ in 0..3 {
        let request = Request::post("/llm/v1/chat/completions")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(hello(10).to_string()))
            .unwrap();
        assert_status(&gw.app.send(request).await, StatusCode::OK);
    }
    assert_eq!(
        usage_rows(&gw.app).await.len(),
        3,
        "every usage record kept"
    );
    let flush = || {
        let (logs, traces) = (logs.clone(), traces.clone());
        tokio::task::spawn_blocking(move || {
            let _ = logs.force_flush();
            let _ = traces.force_flush();
        })
    };
    let _ = flush().await;
    let mut exported = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while exported
        .iter()
        .filter(|l: &&fake_opentelemetry_collector::ExportedLog| {
            l.attributes
                .get("paved.kind")
                .is_some_and(|k| k.contains("\"billing\""))
        })
        .count()
        < 3
        && Instant::now() < deadline
    {
        let _ = flush().await;
        exported.extend(collector.exported_logs(1, Duration::from_secs(2)).await);
    }
    let billing: Vec<_> = exported
        .iter()
        .filter(|l| {
            l.attributes
                .get("paved.kind")
                .is_some_and(|k| k.contains("\"billing\""))
        })
        .collect();
    assert_eq!(billing.len(), 3, "{exported:?}");
    let rows: Vec<String> = sqlx::query_scalar("SELECT trace_id FROM llm_usage ORDER BY id")
        .fetch_all(&gw.app.state.core.db)
        .await
        .unwrap();
    for log in &billing {
        assert!(
            rows.contains(&log.trace_id),
            "a billing log joins its usage row by trace id: {log:?}"
        );
        assert!(
            log.attributes["paved.team"].contains("\"payments\""),
            "{log:?}"
        );
    }
    let spans = collector
        .exported_spans(0, Duration::from_millis(500))
        .await;
    assert!(
        !spans.iter().any(|s| s.name == "chat stub-chat"),
        "with a ratio of 0 no new trace is recorded"
    );
    let _ = logs.shutdown();
    let _ = traces.shutdown();
}
