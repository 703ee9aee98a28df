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

// ---------------------------------------------------------------------------
// Anthropic Messages API

const ANTHROPIC_VERSION: &str = "2023-06-01";

fn messages_body() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "hi"}],
    })
}

fn weather_body() -> Value {
    json!({
        "model": "claude-haiku-4-5",
        "max_tokens": 256,
        "tools": [
            {"name": "get_weather", "description": "Current weather", "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            }},
            {"name": "other", "input_schema": {"type": "object"}},
        ],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is the weather in Paris?"}
        ]}],
    })
}

/// Posts `body` to `/v1/messages` with Anthropic's headers.
async fn post_messages(base: &str, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Splits a typed SSE body (`event:` then `data:` lines) into its events.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| {
            let (name, data) = event.split_once('\n').expect("an event line, then data");
            let name = name.strip_prefix("event: ").expect("event line");
            let data = data.strip_prefix("data: ").expect("data line");
            let data: Value = serde_json::from_str(data).expect("JSON data");
            assert_eq!(data["type"], name, "data.type names the event");
            (name.to_owned(), data)
        })
        .collect()
}

fn names(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

/// The concatenated `delta.<field>` of the `content_block_delta` events for
/// block `index`.
fn block_deltas(events: &[(String, Value)], index: u64, field: &str) -> String {
    events
        .iter()
        .filter(|(name, data)| name == "content_block_delta" && data["index"] == index)
        .map(|(_, data)| data["delta"][field].as_str().unwrap().to_owned())
        .collect()
}

fn is_event_stream(resp: &reqwest::Response) -> bool {
    resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream")
}

#[tokio::test]
async fn messages_json_with_usage() {
    let stub = Stub::new();
    stub.push(Behaviour::ok().with_usage(11, 4));
    let base = start(&stub).await;

    let resp = post_messages(&base, "sk-ant-any", &messages_body()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "id": "msg_stub_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hello from the stub."}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": 11,
                "output_tokens": 4,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        })
    );

    let seen = stub.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/messages");
    assert_eq!(seen[0].x_api_key.as_deref(), Some("sk-ant-any"));
    assert_eq!(
        seen[0].anthropic_version.as_deref(),
        Some(ANTHROPIC_VERSION)
    );
    assert_eq!(seen[0].authorization, None);
    assert_eq!(seen[0].body, messages_body());
}

#[tokio::test]
async fn messages_stream_event_order_and_usage() {
    let stub = Stub::new();
    stub.push(Behaviour::ok().with_usage(25, 15));
    let base = start(&stub).await;

    let mut body = messages_body();
    body["stream"] = json!(true);
    let resp = post_messages(&base, "k", &body).await;
    assert_eq!(resp.status(), 200);
    assert!(is_event_stream(&resp));
    let text = resp.text().await.unwrap();
    let events = sse_events(&text);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ],
        "{text}"
    );

    let start = &events[0].1["message"];
    assert_eq!(start["id"], "msg_stub_1");
    assert_eq!(start["type"], "message");
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["model"], "claude-sonnet-4-5");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["input_tokens"], 25);
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(
        events[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    for (name, data) in &events[3..7] {
        assert_eq!(name, "content_block_delta");
        assert_eq!(data["delta"]["type"], "text_delta");
    }
    assert_eq!(block_deltas(&events, 0, "text"), "Hello from the stub.");
    assert_eq!(
        events[7].1,
        json!({"type": "content_block_stop", "index": 0})
    );
    assert_eq!(
        events[8].1,
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": 15},
        })
    );
    assert_eq!(events[9].1, json!({"type": "message_stop"}));
}

#[tokio::test]
async fn messages_tool_use_json_and_stream() {
    let stub = Stub::new();
    let base = start(&stub).await;

    let body: Value = post_messages(&base, "k", &weather_body())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["model"], "claude-haiku-4-5");
    assert_eq!(
        body["content"],
        json!([
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_stub_1", "name": "get_weather", "input": {"city": "Paris"}},
        ])
    );

    let mut streamed = weather_body();
    streamed["stream"] = json!(true);
    let text = post_messages(&base, "k", &streamed)
        .await
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    assert_eq!(
        names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ],
        "{text}"
    );
    assert_eq!(block_deltas(&events, 0, "text"), "Let me check.");
    assert_eq!(
        events[7].1["content_block"],
        json!({"type": "tool_use", "id": "toolu_stub_2", "name": "get_weather", "input": {}})
    );
    assert_eq!(events[7].1["index"], 1);
    assert!(events[8..10]
        .iter()
        .all(|(_, data)| data["delta"]["type"] == "input_json_delta"));
    let input: Value = serde_json::from_str(&block_deltas(&events, 1, "partial_json")).unwrap();
    assert_eq!(input, json!({"city": "Paris"}));
    assert_eq!(
        events[10].1,
        json!({"type": "content_block_stop", "index": 1})
    );
    assert_eq!(events[11].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[11].1["usage"], json!({"output_tokens": 20}));

    // Once the last user turn is a tool result, the answer is plain text.
    let mut follow_up = weather_body();
    follow_up["messages"] = json!([
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_stub_1", "name": "get_weather", "input": {"city": "Paris"}}
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_stub_1", "content": "weather: sunny"}
        ]},
    ]);
    let body: Value = post_messages(&base, "k", &follow_up)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["content"][0]["text"], "Hello from the stub.");
}

#[tokio::test]
async fn messages_require_x_api_key() {
    let stub = Stub::new().require_key("sk-ant");
    stub.push(Behaviour::ok().with_usage(1, 2));
    let base = start(&stub).await;
    let client = reqwest::Client::new();
    let unauthorized = json!({
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    });

    // Bearer is OpenAI's scheme, not Anthropic's.
    let resp = client
        .post(format!("{base}/v1/messages"))
        .bearer_auth("sk-ant")
        .header("anthropic-version", ANTHROPIC_VERSION)
        .json(&messages_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap(), unauthorized);

    let resp = post_messages(&base, "sk-wrong", &messages_body()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.json::<Value>().await.unwrap(), unauthorized);

    // Rejections consumed nothing: the queued usage applies now.
    let resp = post_messages(&base, "sk-ant", &messages_body()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["usage"]["input_tokens"], 1);

    // And x-api-key does not authorise the OpenAI endpoints.
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .header("x-api-key", "sk-ant")
        .json(&chat_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(stub.count(), 4);
}

#[tokio::test]
async fn messages_validate_headers_and_body() {
    let stub = Stub::new();
    stub.push(Behaviour::status(500));
    let base = start(&stub).await;
    let client = reqwest::Client::new();

    let resp = client
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", "k")
        .json(&messages_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"type": "error", "error": {
            "type": "invalid_request_error",
            "message": "anthropic-version: header is required",
        }})
    );

    let broken = [
        ("model", Value::Null),
        ("max_tokens", Value::Null),
        ("max_tokens", json!(0)),
        ("max_tokens", json!("10")),
        ("messages", Value::Null),
        ("messages", json!([])),
    ];
    for (key, value) in broken {
        let mut body = messages_body();
        match value {
            Value::Null => {
                body.as_object_mut().unwrap().remove(key);
            }
            value => body[key] = value,
        }
        let resp = post_messages(&base, "k", &body).await;
        assert_eq!(resp.status(), 400, "{body}");
        let error: Value = resp.json().await.unwrap();
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert!(
            error["error"]["message"].as_str().unwrap().starts_with(key),
            "{error}"
        );
    }

    // None of that consumed the queued 500.
    let resp = post_messages(&base, "k", &messages_body()).await;
    assert_eq!(resp.status(), 500);
}

#[tokio::test]
async fn messages_errors_use_anthropic_shape() {
    let stub = Stub::new();
    stub.push(Behaviour::status(529).with_retry_after("3"));
    stub.push(Behaviour::status(429).with_retry_after("1"));
    stub.push(
        Behaviour::status(400)
            .with_error_code("invalid_request_error")
            .with_error_message("prompt is too long: 250000 tokens > 200000 maximum"),
    );
    stub.push(Behaviour::status(413));
    stub.push(Behaviour::status(503));
    let base = start(&stub).await;

    let resp = post_messages(&base, "k", &messages_body()).await;
    assert_eq!(resp.status(), 529);
    assert_eq!(resp.headers()["retry-after"], "3");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "stub error 529"}})
    );

    let resp = post_messages(&base, "k", &messages_body()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");

    let resp = post_messages(&base, "k", &messages_body()).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("retry-after").is_none());
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"type": "error", "error": {
            "type": "invalid_request_error",
            "message": "prompt is too long: 250000 tokens > 200000 maximum",
        }})
    );

    let body: Value = post_messages(&base, "k", &messages_body())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["type"], "request_too_large");
    let body: Value = post_messages(&base, "k", &messages_body())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["type"], "api_error");
}

// ---------------------------------------------------------------------------
// OpenAI Responses API

fn responses_body() -> Value {
    json!({"model": "gpt-4o-mini", "input": "hi", "instructions": "Be brief."})
}

#[tokio::test]
async fn responses_json_with_usage() {
    let stub = Stub::new().require_key("sk-test");
    stub.push(Behaviour::ok().with_usage(36, 87));
    let base = start(&stub).await;
    let client = reqwest::Client::new();

    let resp = client
        .post(format!("{base}/v1/responses"))
        .header("x-api-key", "sk-test")
        .json(&responses_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");

    let resp = client
        .post(format!("{base}/v1/responses"))
        .bearer_auth("sk-test")
        .json(&responses_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    // Ids number every request, rejected ones included.
    assert_eq!(body["id"], "resp_stub_2");
    assert_eq!(body["object"], "response");
    assert!(body["created_at"].as_u64().unwrap() > 0);
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["instructions"], "Be brief.");
    assert_eq!(
        body["output"],
        json!([{
            "type": "message",
            "id": "msg_stub_2",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello from the stub.", "annotations": [], "logprobs": []}],
        }])
    );
    assert_eq!(
        body["usage"],
        json!({
            "input_tokens": 36,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 123,
        })
    );
    // The fields the official SDKs need to parse a Response.
    assert_eq!(body["parallel_tool_calls"], true);
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["tools"], json!([]));
    assert_eq!(body["text"], json!({"format": {"type": "text"}}));
    assert_eq!(body["truncation"], "disabled");
    assert_eq!(body["metadata"], json!({}));
    for key in [
        "error",
        "incomplete_details",
        "max_output_tokens",
        "previous_response_id",
        "user",
    ] {
        assert_eq!(body[key], Value::Null, "{key}");
    }
    for key in ["temperature", "top_p"] {
        assert!(body[key].is_number(), "{key}");
    }
    assert!(body["reasoning"].is_object());

    // `input` and `model` are required.
    for body in [json!({"model": "m"}), json!({"input": "hi"})] {
        let resp = client
            .post(format!("{base}/v1/responses"))
            .bearer_auth("sk-test")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        let error: Value = resp.json().await.unwrap();
        assert_eq!(error["error"]["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn responses_stream_events_and_sequence() {
    let stub = Stub::new();
    stub.push(Behaviour::ok().with_usage(5, 6));
    let base = start(&stub).await;

    let mut body = responses_body();
    body["stream"] = json!(true);
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/responses"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(is_event_stream(&resp));
    let text = resp.text().await.unwrap();
    assert!(!text.contains("[DONE]"), "{text}");
    let events = sse_events(&text);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ],
        "{text}"
    );
    for (i, (_, data)) in events.iter().enumerate() {
        assert_eq!(data["sequence_number"], i);
    }

    let created = &events[0].1["response"];
    assert_eq!(created["id"], "resp_stub_1");
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["output"], json!([]));
    assert_eq!(created["usage"], Value::Null);
    assert_eq!(events[2].1["item"]["status"], "in_progress");
    assert_eq!(events[2].1["output_index"], 0);

    let deltas: String = events
        .iter()
        .filter(|(name, _)| name == "response.output_text.delta")
        .map(|(_, data)| {
            assert_eq!(data["item_id"], "msg_stub_1");
            assert_eq!(data["output_index"], 0);
            assert_eq!(data["content_index"], 0);
            data["delta"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(deltas, "Hello from the stub.");
    assert_eq!(events[8].1["text"], "Hello from the stub.");
    assert_eq!(events[9].1["part"]["text"], "Hello from the stub.");
    assert_eq!(events[10].1["item"]["status"], "completed");

    let completed = &events[11].1["response"];
    assert_eq!(completed["id"], "resp_stub_1");
    assert_eq!(completed["status"], "completed");
    assert_eq!(
        completed["output"][0]["content"][0]["text"],
        "Hello from the stub."
    );
    assert_eq!(completed["usage"]["input_tokens"], 5);
    assert_eq!(completed["usage"]["output_tokens"], 6);
    assert_eq!(completed["usage"]["total_tokens"], 11);
}

#[tokio::test]
async fn responses_errors_use_openai_shape() {
    let stub = Stub::new();
    stub.push(
        Behaviour::status(429)
            .with_retry_after("2")
            .with_error_code("rate_limit_exceeded")
            .with_error_message("Rate limit reached"),
    );
    let base = start(&stub).await;

    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/responses"))
        .json(&responses_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"error": {
            "message": "Rate limit reached",
            "type": "rate_limit_error",
            "code": "rate_limit_exceeded",
        }})
    );
}

// ---------------------------------------------------------------------------
// Stream shaping

#[tokio::test]
async fn omit_usage_drops_usage_everywhere() {
    let stub = Stub::new();
    stub.set_default(Behaviour::ok().without_usage());
    let base = start(&stub).await;
    let client = reqwest::Client::new();
    let post = |path: &'static str, body: Value| {
        client
            .post(format!("{base}{path}"))
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json(&body)
            .send()
    };
    let streamed = |mut body: Value| {
        body["stream"] = json!(true);
        body
    };

    // Chat completions: no usage, even when the stream asks for it.
    let body: Value = post("/v1/chat/completions", chat_body())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the stub."
    );
    assert!(body.get("usage").is_none(), "{body}");
    let mut chat = streamed(chat_body());
    chat["stream_options"] = json!({"include_usage": true});
    let text = post("/v1/chat/completions", chat)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(sse_data(&text).len(), 4, "{text}");
    assert!(!text.contains("usage"), "{text}");

    // Messages: no usage object in JSON; empty ones in the stream.
    let body: Value = post("/v1/messages", messages_body())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["type"], "message");
    assert!(body.get("usage").is_none(), "{body}");
    let text = post("/v1/messages", streamed(messages_body()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    assert_eq!(events.first().unwrap().1["message"]["usage"], json!({}));
    let delta = events
        .iter()
        .find(|(name, _)| name == "message_delta")
        .unwrap();
    assert_eq!(delta.1["usage"], json!({}));
    assert!(!text.contains("_tokens"), "{text}");

    // Responses: no usage in the object nor in response.completed.
    let body: Value = post("/v1/responses", responses_body())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "completed");
    assert!(body.get("usage").is_none(), "{body}");
    let text = post("/v1/responses", streamed(responses_body()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events = sse_events(&text);
    let (name, completed) = events.last().unwrap();
    assert_eq!(name, "response.completed");
    assert_eq!(completed["response"]["status"], "completed");
    assert!(completed["response"].get("usage").is_none(), "{text}");

    // Embeddings too.
    let body: Value = post("/v1/embeddings", json!({"input": "x"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("usage").is_none(), "{body}");
}

/// Reads a streamed body chunk by chunk: what arrived, and whether it ended
/// in an error rather than cleanly.
async fn read_until_end(mut resp: reqwest::Response) -> (String, bool) {
    let mut received = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => received.extend_from_slice(&chunk),
            Ok(None) => return (String::from_utf8(received).unwrap(), false),
            Err(_) => return (String::from_utf8(received).unwrap(), true),
        }
    }
}

#[tokio::test]
async fn cut_after_chunks_breaks_the_body() {
    let stub = Stub::new();
    let base = start(&stub).await;
    let client = reqwest::Client::new();
    let streamed = |mut body: Value| {
        body["stream"] = json!(true);
        body
    };
    let cases = [
        ("/v1/chat/completions", streamed(chat_body())),
        ("/v1/messages", streamed(messages_body())),
        ("/v1/responses", streamed(responses_body())),
    ];

    for (path, body) in cases {
        stub.push(Behaviour::ok().cut_after(2));
        let resp = client
            .post(format!("{base}{path}"))
            .header("anthropic-version", ANTHROPIC_VERSION)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let (text, failed) = read_until_end(resp).await;
        assert!(failed, "{path}: the body ended cleanly: {text}");
        let events = text.split("\n\n").filter(|e| !e.is_empty()).count();
        assert_eq!(events, 2, "{path}: {text}");
    }

    // With a delay the break still comes after the events that were sent.
    stub.push(Behaviour::ok().with_delay_ms(40).cut_after(3));
    let resp = client
        .post(format!("{base}/v1/responses"))
        .json(&streamed(responses_body()))
        .send()
        .await
        .unwrap();
    let (text, failed) = read_until_end(resp).await;
    assert!(failed);
    let events = sse_events(&text);
    assert_eq!(
        names(&events),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added"
        ]
    );

    // A whole-body read fails too, and uncut streams still end cleanly.
    stub.push(Behaviour::ok().cut_after(100));
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&streamed(chat_body()))
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.is_err());
    let resp = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&streamed(chat_body()))
        .send()
        .await
        .unwrap();
    let (text, failed) = read_until_end(resp).await;
    assert!(!failed, "{text}");
}

#[tokio::test]
async fn models_list_claude_ids_and_chat_error_message_override() {
    let stub = Stub::new();
    stub.push(Behaviour::status(400).with_error_message("context_length_exceeded: too long"));
    let base = start(&stub).await;
    let client = reqwest::Client::new();

    let models: Value = client
        .get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"claude-sonnet-4-5"), "{ids:?}");
    assert!(ids.contains(&"claude-haiku-4-5"), "{ids:?}");

    let body: Value = client
        .post(format!("{base}/v1/chat/completions"))
        .json(&chat_body())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body["error"]["message"],
        "context_length_exceeded: too long"
    );
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn control_json_accepts_the_new_behaviour_fields() {
    let stub = Stub::new();
    let base = start(&stub).await;
    let client = reqwest::Client::new();

    let resp = client
        .post(format!("{base}/_stub/push"))
        .body(r#"{"status":529,"error_message":"Overloaded","retry_after":"5"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .post(format!("{base}/_stub/default"))
        .body(r#"{"omit_usage":true,"cut_after_chunks":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);

    let resp = post_messages(&base, "k", &messages_body()).await;
    assert_eq!(resp.status(), 529);
    assert_eq!(resp.headers()["retry-after"], "5");
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    );
    let body: Value = post_messages(&base, "k", &messages_body())
        .await
        .json()
        .await
        .unwrap();
    assert!(body.get("usage").is_none());
}
