//! OpenAI's Responses API: `POST /v1/responses`.
//!
//! Follows OpenAI's published `response` object (with every field the
//! official SDKs require) and its typed SSE stream, whose events carry a
//! `sequence_number` and which ends with `response.completed` (no `[DONE]`).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::{
    behaviour_error, json_bytes, parse_body, sse_named, sse_response, to_json, unix_secs,
    word_pieces, Behaviour, KeyHeader, Stub, FALLBACK_MODEL, REPLY,
};

/// `POST /v1/responses`.
pub(crate) async fn responses(
    State(stub): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let (body, parse_error) = parse_body(&raw);
    let invalid = parse_error.or_else(|| validate(&body));
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    let echo = Echo::of(&body);

    let admitted = stub.admit(&method, &uri, &headers, body, invalid, KeyHeader::Bearer);
    let (n, behaviour) = match admitted {
        Ok(admitted) => admitted,
        Err(rejected) => return rejected.into_response(),
    };
    if behaviour.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(behaviour.delay_ms)).await;
    }
    if behaviour.status != 200 {
        return behaviour_error(&behaviour);
    }

    let answer = Answer {
        id: format!("resp_stub_{n}"),
        item_id: format!("msg_stub_{n}"),
        created_at: unix_secs(),
        echo,
    };
    if streaming {
        sse_response(answer.events(&behaviour), &behaviour)
    } else {
        json_bytes(
            StatusCode::OK,
            to_json(&answer.response(Status::Completed, &behaviour)),
        )
    }
}

/// Checks the fields the stub needs; `Some(message)` for the first problem.
fn validate(body: &Value) -> Option<&'static str> {
    if !body.get("model").is_some_and(Value::is_string) {
        return Some("Missing required parameter: 'model'.");
    }
    match body.get("input") {
        None | Some(Value::Null) => Some("Missing required parameter: 'input'."),
        Some(Value::String(_) | Value::Array(_)) => None,
        Some(_) => Some("Invalid type for 'input': expected a string or an array."),
    }
}

/// Request parameters the `response` object echoes back, with the API's
/// defaults for those not sent.
struct Echo {
    fields: Map<String, Value>,
}

impl Echo {
    fn of(body: &Value) -> Self {
        let get = |key: &str, default: Value| match body.get(key) {
            Some(value) if !value.is_null() => value.clone(),
            _ => default,
        };
        let mut fields = Map::new();
        fields.insert(
            "model".to_owned(),
            get("model", Value::from(FALLBACK_MODEL)),
        );
        fields.insert("instructions".to_owned(), get("instructions", Value::Null));
        fields.insert(
            "max_output_tokens".to_owned(),
            get("max_output_tokens", Value::Null),
        );
        fields.insert(
            "parallel_tool_calls".to_owned(),
            get("parallel_tool_calls", Value::Bool(true)),
        );
        fields.insert(
            "previous_response_id".to_owned(),
            get("previous_response_id", Value::Null),
        );
        fields.insert(
            "reasoning".to_owned(),
            get("reasoning", json!({"effort": null, "summary": null})),
        );
        fields.insert("store".to_owned(), get("store", Value::Bool(true)));
        fields.insert("temperature".to_owned(), get("temperature", json!(1.0)));
        fields.insert(
            "text".to_owned(),
            get("text", json!({"format": {"type": "text"}})),
        );
        fields.insert("tool_choice".to_owned(), get("tool_choice", json!("auto")));
        fields.insert("tools".to_owned(), get("tools", json!([])));
        fields.insert("top_p".to_owned(), get("top_p", json!(1.0)));
        fields.insert(
            "truncation".to_owned(),
            get("truncation", json!("disabled")),
        );
        fields.insert("user".to_owned(), get("user", Value::Null));
        fields.insert("metadata".to_owned(), get("metadata", json!({})));
        Self { fields }
    }
}

/// The `status` of a `response` object.
#[derive(Clone, Copy)]
enum Status {
    InProgress,
    Completed,
}

/// A successful answer, rendered as a `response` object or as a stream.
struct Answer {
    id: String,
    item_id: String,
    created_at: u64,
    echo: Echo,
}

impl Answer {
    /// The `output_text` content part, with `text` so far.
    fn part(text: &str) -> Value {
        json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    }

    /// The assistant `message` output item.
    fn item(&self, status: Status) -> Value {
        let (status, content) = match status {
            Status::InProgress => ("in_progress", json!([])),
            Status::Completed => ("completed", json!([Self::part(REPLY)])),
        };
        json!({
            "type": "message",
            "id": self.item_id,
            "status": status,
            "role": "assistant",
            "content": content,
        })
    }

    /// The `response` object. In progress it has no output and `usage: null`;
    /// completed it has the message and usage (no `usage` key at all when
    /// the behaviour omits usage).
    fn response(&self, status: Status, b: &Behaviour) -> Value {
        let mut response = Map::new();
        response.insert("id".to_owned(), Value::from(self.id.as_str()));
        response.insert("object".to_owned(), Value::from("response"));
        response.insert("created_at".to_owned(), Value::from(self.created_at));
        let (status_name, output) = match status {
            Status::InProgress => ("in_progress", json!([])),
            Status::Completed => ("completed", json!([self.item(status)])),
        };
        response.insert("status".to_owned(), Value::from(status_name));
        response.insert("error".to_owned(), Value::Null);
        response.insert("incomplete_details".to_owned(), Value::Null);
        response.extend(
            self.echo
                .fields
                .iter()
                .map(|(key, value)| (key.clone(), value.clone())),
        );
        response.insert("output".to_owned(), output);
        match status {
            Status::InProgress => {
                response.insert("usage".to_owned(), Value::Null);
            }
            Status::Completed if !b.omit_usage => {
                response.insert("usage".to_owned(), usage(b));
            }
            Status::Completed => {}
        }
        Value::Object(response)
    }

    /// The stream's events, in order, numbered from 0.
    fn events(&self, b: &Behaviour) -> Vec<Bytes> {
        let mut stream = Events::default();
        stream.push(
            "response.created",
            json!({"response": self.response(Status::InProgress, b)}),
        );
        stream.push(
            "response.in_progress",
            json!({"response": self.response(Status::InProgress, b)}),
        );
        stream.push(
            "response.output_item.added",
            json!({"output_index": 0, "item": self.item(Status::InProgress)}),
        );
        // Content events locate themselves first, then carry their payload.
        let at = |payload: Value| {
            let mut fields = Map::new();
            fields.insert("item_id".to_owned(), Value::from(self.item_id.as_str()));
            fields.insert("output_index".to_owned(), Value::from(0));
            fields.insert("content_index".to_owned(), Value::from(0));
            if let Value::Object(payload) = payload {
                fields.extend(payload);
            }
            Value::Object(fields)
        };
        stream.push(
            "response.content_part.added",
            at(json!({"part": Self::part("")})),
        );
        for piece in word_pieces(REPLY) {
            stream.push(
                "response.output_text.delta",
                at(json!({"delta": piece, "logprobs": []})),
            );
        }
        stream.push(
            "response.output_text.done",
            at(json!({"text": REPLY, "logprobs": []})),
        );
        stream.push(
            "response.content_part.done",
            at(json!({"part": Self::part(REPLY)})),
        );
        stream.push(
            "response.output_item.done",
            json!({"output_index": 0, "item": self.item(Status::Completed)}),
        );
        stream.push(
            "response.completed",
            json!({"response": self.response(Status::Completed, b)}),
        );
        stream.events
    }
}

/// The `usage` object of a completed response.
fn usage(b: &Behaviour) -> Value {
    json!({
        "input_tokens": b.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": b.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": b.prompt_tokens.saturating_add(b.completion_tokens),
    })
}

/// Builds the stream, numbering events as it goes.
#[derive(Default)]
struct Events {
    events: Vec<Bytes>,
}

impl Events {
    /// Adds one event: `type` and `sequence_number` first, then `fields`.
    fn push(&mut self, name: &str, fields: Value) {
        let mut data = Map::new();
        data.insert("type".to_owned(), Value::from(name));
        data.insert("sequence_number".to_owned(), Value::from(self.events.len()));
        if let Value::Object(fields) = fields {
            data.extend(fields);
        }
        self.events.push(sse_named(name, &data));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_requires_model_and_input() {
        assert_eq!(validate(&json!({"model": "m", "input": "hi"})), None);
        assert_eq!(validate(&json!({"model": "m", "input": []})), None);
        assert!(validate(&json!({"input": "hi"})).is_some());
        assert!(validate(&json!({"model": "m"})).is_some());
        assert!(validate(&json!({"model": "m", "input": 3})).is_some());
    }

    #[test]
    fn echo_keeps_sent_values_and_defaults_the_rest() {
        let echo =
            Echo::of(&json!({"model": "gpt-4o", "instructions": "be brief", "temperature": 0.2}));
        assert_eq!(echo.fields["model"], "gpt-4o");
        assert_eq!(echo.fields["instructions"], "be brief");
        assert_eq!(echo.fields["temperature"], 0.2);
        assert_eq!(echo.fields["tool_choice"], "auto");
        assert_eq!(echo.fields["tools"], json!([]));
        assert_eq!(echo.fields["parallel_tool_calls"], true);
    }
}
