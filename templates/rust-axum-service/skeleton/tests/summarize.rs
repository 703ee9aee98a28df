//! End-to-end tests: the real router on 127.0.0.1 talking to a fake
//! OpenAI-compatible gateway, also on 127.0.0.1, that records what it got.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use ${{ values.name | replace('-', '_') }} as service;

use service::config::{Config, KeySource};
use service::trace_context::TraceParent;

const KEY: &str = "test-gateway-key";

/// What the fake gateway saw, and the statuses it answers with first.
#[derive(Clone, Default)]
struct FakeGateway {
    seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
    failures: Arc<Mutex<Vec<StatusCode>>>,
}

impl FakeGateway {
    fn seen(&self) -> Vec<(HeaderMap, Value)> {
        self.seen.lock().unwrap().clone()
    }
}

async fn chat_completions(
    State(fake): State<FakeGateway>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    fake.seen.lock().unwrap().push((headers, body.clone()));
    let failure = {
        let mut failures = fake.failures.lock().unwrap();
        (!failures.is_empty()).then(|| failures.remove(0))
    };
    if let Some(status) = failure {
        let error = json!({ "error": { "message": format!("scripted {status}") } });
        return (status, Json(error));
    }
    let text = body["messages"][1]["content"].as_str().unwrap_or_default();
    let answer = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": body["model"],
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": format!(" {} words. ", text.split_whitespace().count()) },
            "finish_reason": "stop"
        }],
        "usage": { "prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15 }
    });
    (StatusCode::OK, Json(answer))
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

struct Harness {
    base: String,
    fake: FakeGateway,
    http: reqwest::Client,
}

async fn start(key: KeySource, failures: &[StatusCode]) -> Harness {
    let fake = FakeGateway::default();
    fake.failures.lock().unwrap().extend_from_slice(failures);
    let gateway = serve(
        Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .with_state(fake.clone()),
    )
    .await;

    let mut config = Config::from_lookup(|_| None);
    config.gateway_url = format!("http://{gateway}/v1");
    config.key = key;
    config.timeout = Duration::from_secs(5);
    let app = serve(service::app(&config).unwrap()).await;

    Harness {
        base: format!("http://{app}"),
        fake,
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl Harness {
    async fn summarize(&self, headers: &[(&str, &str)], body: Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(format!("{}/v1/summarize", self.base))
            .json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn healthz_answers_ok() {
    let h = start(KeySource::Static(KEY.into()), &[]).await;
    let response = h
        .http
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ok");
}

#[tokio::test]
async fn summarize_calls_the_gateway_with_key_idempotency_key_and_model() {
    let h = start(KeySource::Static(KEY.into()), &[]).await;
    let response = h
        .summarize(
            &[("Idempotency-Key", "client-key-1")],
            json!({ "text": "one two three four" }),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["idempotency-key"], "client-key-1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "summary": "4 words." }));

    let seen = h.fake.seen();
    assert_eq!(seen.len(), 1);
    let (headers, sent) = &seen[0];
    assert_eq!(headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(headers["idempotency-key"], "client-key-1");
    assert_eq!(sent["model"], service::config::DEFAULT_MODEL);
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(
        sent["messages"][1],
        json!({ "role": "user", "content": "one two three four" })
    );
}

#[tokio::test]
async fn a_new_uuid_v4_idempotency_key_is_sent_when_the_client_gives_none() {
    let h = start(KeySource::Static(KEY.into()), &[]).await;
    let first = h.summarize(&[], json!({ "text": "a b" })).await;
    let second = h.summarize(&[], json!({ "text": "a b" })).await;
    assert_eq!(first.status(), 200);
    let echoed = first.headers()["idempotency-key"]
        .to_str()
        .unwrap()
        .to_owned();

    let seen = h.fake.seen();
    let sent: Vec<&str> = seen
        .iter()
        .map(|(headers, _)| headers["idempotency-key"].to_str().unwrap())
        .collect();
    assert_eq!(sent[0], echoed);
    assert_ne!(sent[0], sent[1]);
    for key in sent {
        assert_eq!(uuid::Uuid::parse_str(key).unwrap().get_version_num(), 4);
    }
    drop(second);
}

#[tokio::test]
async fn retries_reuse_the_same_idempotency_key() {
    let h = start(
        KeySource::Static(KEY.into()),
        &[StatusCode::SERVICE_UNAVAILABLE],
    )
    .await;
    let response = h.summarize(&[], json!({ "text": "retry me" })).await;
    assert_eq!(response.status(), 200);

    let seen = h.fake.seen();
    assert_eq!(seen.len(), 2, "one failure, one retry");
    assert_eq!(seen[0].0["idempotency-key"], seen[1].0["idempotency-key"]);
    assert_eq!(seen[1].0["authorization"], format!("Bearer {KEY}"));
}

#[tokio::test]
async fn the_callers_trace_is_continued() {
    let h = start(KeySource::Static(KEY.into()), &[]).await;
    let inbound = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = h
        .summarize(&[("traceparent", inbound)], json!({ "text": "x" }))
        .await;
    assert_eq!(response.status(), 200);
    let _ = h.summarize(&[], json!({ "text": "y" })).await;

    let seen = h.fake.seen();
    let continued = TraceParent::parse(seen[0].0["traceparent"].to_str().unwrap()).unwrap();
    assert_eq!(continued.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(continued.span_id, "00f067aa0ba902b7");
    // Without a caller trace, a new valid one is started.
    let fresh = TraceParent::parse(seen[1].0["traceparent"].to_str().unwrap()).unwrap();
    assert_ne!(fresh.trace_id, continued.trace_id);
}

#[tokio::test]
async fn the_key_is_read_from_the_vault_agent_file() {
    let path = std::env::temp_dir().join(format!("llm-gateway-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, "OTHER=x\nPAVED_LLM_GATEWAY_KEY=from-vault\n").unwrap();
    let h = start(KeySource::File(path.clone()), &[]).await;
    let response = h.summarize(&[], json!({ "text": "hello" })).await;
    assert_eq!(response.status(), 200);
    assert_eq!(h.fake.seen()[0].0["authorization"], "Bearer from-vault");
    std::fs::remove_file(path).unwrap();
}

#[tokio::test]
async fn without_a_key_the_service_answers_503_and_calls_nothing() {
    let missing = std::env::temp_dir().join(format!("missing-{}", uuid::Uuid::new_v4()));
    let h = start(KeySource::File(missing), &[]).await;
    let response = h.summarize(&[], json!({ "text": "hello" })).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("PAVED_LLM_GATEWAY_KEY")
    );
    assert!(h.fake.seen().is_empty());
}

#[tokio::test]
async fn gateway_errors_are_reported_without_retrying_client_errors() {
    let h = start(KeySource::Static(KEY.into()), &[StatusCode::UNAUTHORIZED]).await;
    let response = h.summarize(&[], json!({ "text": "hello" })).await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("scripted 401"));
    assert_eq!(h.fake.seen().len(), 1);
}

#[tokio::test]
async fn bad_requests_are_rejected_before_calling_the_gateway() {
    let h = start(KeySource::Static(KEY.into()), &[]).await;
    assert_eq!(
        h.summarize(&[], json!({ "text": "  " })).await.status(),
        400
    );
    assert_eq!(h.summarize(&[], json!({ "nope": 1 })).await.status(), 422);
    assert_eq!(
        h.summarize(&[("Idempotency-Key", "has space")], json!({ "text": "x" }))
            .await
            .status(),
        400
    );
    assert!(h.fake.seen().is_empty());
}
