//! End-to-end tests of the stub over real HTTP.

use std::time::{Duration, Instant};

use paved_llm_stub::{spawn, Behaviour, Stub};
use serde_json::{json, Value};

async fn start(stub: &Stub) -> String {
    let addr = spawn(stub.clone()).await;
    format!("http://{addr}")
}

fn chat_body() -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
}

/// Splits an SSE body into its `data:` payloads.
fn sse_data(text: &str) -> Vec<&str> {
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| event.strip_prefix("data: ").expect("every event is data"))
        .collect()
}

#[tokio::test]
async fn chat_completion_json_with_usage() {
    let stub = Stub::new();
    stub.push(Behaviour::ok().with_usage(7, 3));
    let base = start(&stub).await;

    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["id"], "chatcmpl-stub-1");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert!(body["created"].as_u64().unwrap() > 0);
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the stub."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})
    );

    // The queue is empty again: the default usage applies.
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat_body())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["id"], "chatcmpl-stub-2");
    assert_eq!(body["usage"]["total_tokens"], 30);
    assert_eq!(stub.count(), 2);
}

#[tokio::test]
async fn queued_429_with_retry_after_then_200() {
    let stub = Stub::new();
    stub.push(
        Behaviour::status(429)
            .with_retry_after("2")
            .with_error_code("rate_limit_exceeded"),
    );
    let mut ms = Behaviour::status(503);
    ms.retry_after_ms = Some("150".into());
    stub.push(ms);
    let base = start(&stub).await;
    let client = reqwest::Client::new();
    let send = || {
        client
            .post(format!("{base}/v1/chat/completions"))
            .json(&chat_body())
            .send()
    };

    let resp = send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert!(resp.headers().get("retry-after-ms").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["message"], "stub error 429");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let resp = send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after-ms"], "150");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], Value::Null);

    let resp = send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(stub.count(), 3);
}

#[tokio::test]
async fn streaming_with_include_usage_ends_with_usage_then_done() {
    let stub = Stub::new();
    stub.push(Behaviour::ok().with_usage(4, 5));
    let base = start(&stub).await;

    let mut body = chat_body();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let text = resp.text().await.unwrap();
    let data = sse_data(&text);
    assert_eq!(data.len(), 5, "{text}");
    assert_eq!(*data.last().unwrap(), "[DONE]");

    let chunks: Vec<Value> = data[..4]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert_eq!(chunk["model"], "gpt-4o-mini");
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks[..3]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Hello from the stub.");
    assert_eq!(chunks[1]["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(chunks[2]["choices"][0]["finish_reason"], "stop");
    let usage_chunk = &chunks[3];
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"],
        json!({"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9})
    );
}

#[tokio::test]
async fn streaming_without_include_usage_has_no_usage_chunk() {
    let stub = Stub::new();
    let base = start(&stub).await;

    let mut body = chat_body();
    body["stream"] = json!(true);
    let text = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = sse_data(&text);
    assert_eq!(data.len(), 4, "{text}");
    assert_eq!(data[3], "[DONE]");
    assert!(!text.contains("\"usage\""));
}

#[tokio::test]
async fn streamed_chunks_arrive_incrementally() {
    let stub = Stub::new();
    // 200 ms to the first byte, then chunks 50 ms apart.
    stub.push(Behaviour::ok().with_delay_ms(200));
    let base = start(&stub).await;

    let mut body = chat_body();
    body["stream"] = json!(true);
    let started = Instant::now();
    let mut resp = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let mut reads = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        reads.push((started.elapsed(), chunk));
    }
    assert!(reads.len() >= 2, "expected several reads, got {reads:?}");
    let (first, _) = reads[0];
    let (last, _) = reads[reads.len() - 1];
    assert!(first >= Duration::from_millis(200), "{first:?}");
    assert!(last - first >= Duration::from_millis(100), "{reads:?}");
}

#[tokio::test]
async fn embeddings_for_an_array_input() {
    let stub = Stub::new();
    let base = start(&stub).await;
    let client = reqwest::Client::new();

    let body: Value = client
        .post(format!("{base}/v1/embeddings"))
        .json(&json!({"model": "text-embedding-3-small", "input": ["alpha", "beta", "alpha"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "text-embedding-3-small");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 10, "total_tokens": 10})
    );
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"].as_array().unwrap().len(), 8);
        assert!(item["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .all(Value::is_f64));
    }
    // Deterministic per input text.
    assert_eq!(data[0]["embedding"], data[2]["embedding"]);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    // A single string input gives one vector; no input is a 400.
    let body: Value = client
        .post(format!("{base}/v1/embeddings"))
        .json(&json!({"model": "m", "input": "alpha"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let resp = client
        .post(format!("{base}/v1/embeddings"))
        .json(&json!({"model": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn require_key_gives_401_without_key() {
    let stub = Stub::new().require_key("sk-test");
    stub.push(Behaviour::status(500));
    let base = start(&stub).await;
    let client = reqwest::Client::new();

    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "message": "Incorrect API key provided",
            "type": "invalid_request_error",
            "code": "invalid_api_key"
        }})
    );

    let resp = client
        .post(format!("{base}/v1/embeddings"))
        .bearer_auth("sk-wrong")
        .json(&json!({"input": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = client
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // Rejected requests consumed nothing: the queued 500 is still next.
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("sk-test")
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 500);
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("sk-test")
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let models: Value = client
        .get(format!("{base}/v1/models"))
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["object"], "model");
    assert_eq!(models["data"][0]["owned_by"], "stub");
}

#[tokio::test]
async fn requests_record_traceparent_and_idempotency_key() {
    let stub = Stub::new();
    let base = start(&stub).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;

    reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("sk-any")
        .header("traceparent", traceparent)
        .header("idempotency-key", "idem-42")
        .header("x-request-id", "req-7")
        .json(&chat_body())
        .send()
        .await
        .unwrap();

    let seen = stub.requests();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.method, "POST");
    assert_eq!(s.path, "/v1/chat/completions");
    assert_eq!(s.traceparent.as_deref(), Some(traceparent));
    assert_eq!(s.idempotency_key.as_deref(), Some("idem-42"));
    assert_eq!(s.x_request_id.as_deref(), Some("req-7"));
    assert_eq!(s.authorization.as_deref(), Some("Bearer sk-any"));
    assert_eq!(s.body, chat_body());
    assert!(s.at_unix_ms >= before_ms);
    assert!(s.at <= Instant::now());

    // The same log over HTTP, then reset.
    let client = reqwest::Client::new();
    let log: Value = client
        .get(format!("{base}/_stub/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log[0]["traceparent"], traceparent);
    assert_eq!(log[0]["idempotency_key"], "idem-42");
    stub.reset();
    assert_eq!(stub.count(), 0);
    assert!(stub.requests().is_empty());
}

#[tokio::test]
async fn control_endpoints_queue_and_count() {
    let stub = Stub::new();
    let base = start(&stub).await;
    let client = reqwest::Client::new();

    let pushed: Value = client
        .post(format!("{base}/_stub/push"))
        .body(r#"[{"status":429,"retry_after":"1"},{"status":502}]"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pushed, json!({"pushed": 2, "queued": 2}));
    let resp = client
        .post(format!("{base}/_stub/default"))
        .body(r#"{"prompt_tokens":1,"completion_tokens":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let resp = client
            .post(format!("{base}/v1/chat/completions"))
            .json(&chat_body())
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status() == 200 {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["usage"]["total_tokens"], 2);
        }
    }
    assert_eq!(statuses, [429, 502, 200]);

    let count: Value = client
        .get(format!("{base}/_stub/count"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count, 3);
    let resp = client
        .post(format!("{base}/_stub/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(stub.count(), 0);

    let resp = client
        .post(format!("{base}/_stub/push"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
