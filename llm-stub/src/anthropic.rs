//! Anthropic's Messages API: `POST /v1/messages`.
//!
//! Follows Anthropic's published shapes: the `message` object, the typed SSE
//! stream (`message_start`, `content_block_start`, `ping`,
//! `content_block_delta`, `content_block_stop`, `message_delta`,
//! `message_stop`) and the `{"type":"error","error":{...}}` error body.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::{
    error_status, has_header, json_bytes, parse_body, retry_headers, sse_named, sse_response,
    to_json, word_pieces, Behaviour, KeyHeader, Rejected, Stub, FALLBACK_MODEL, REPLY,
};

/// The text block that precedes a scripted `tool_use` block.
const TOOL_PREAMBLE: &str = "Let me check.";

/// A user message mentioning this word (case-insensitively) in a request
/// with `tools` gets a `tool_use` answer.
const TOOL_TRIGGER: &str = "weather";

/// The `input` of the scripted `tool_use` block, streamed in these pieces.
const TOOL_INPUT_PIECES: [&str; 2] = ["{\"city\": ", "\"Paris\"}"];

/// Tool name used when the first tool has none.
const FALLBACK_TOOL: &str = "tool";

/// `POST /v1/messages`.
pub(crate) async fn messages(
    State(stub): State<Stub>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let (body, parse_error) = parse_body(&raw);
    let invalid = if has_header(&headers, "anthropic-version") {
        parse_error.or_else(|| validate(&body))
    } else {
        Some("anthropic-version: header is required")
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(FALLBACK_MODEL)
        .to_owned();
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    let tool = tool_to_call(&body);

    let admitted = stub.admit(&method, &uri, &headers, body, invalid, KeyHeader::XApiKey);
    let (n, behaviour) = match admitted {
        Ok(admitted) => admitted,
        Err(rejected) => return rejection(rejected),
    };
    if behaviour.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(behaviour.delay_ms)).await;
    }
    if behaviour.status != 200 {
        return behaviour_error(&behaviour);
    }

    let answer = Answer {
        id: format!("msg_stub_{n}"),
        model,
        tool: tool.map(|name| ToolUse {
            id: format!("toolu_stub_{n}"),
            name,
        }),
    };
    if streaming {
        sse_response(answer.events(&behaviour), &behaviour)
    } else {
        json_bytes(StatusCode::OK, to_json(&answer.message(&behaviour)))
    }
}

/// Checks the required body fields the way the API does; `Some(message)` for
/// the first problem.
fn validate(body: &Value) -> Option<&'static str> {
    if !body.get("model").is_some_and(Value::is_string) {
        return Some("model: Field required");
    }
    match body.get("max_tokens") {
        None | Some(Value::Null) => return Some("max_tokens: Field required"),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            if n.as_i64().is_some_and(|v| v < 1) {
                return Some("max_tokens: Input should be greater than or equal to 1");
            }
        }
        Some(_) => return Some("max_tokens: Input should be a valid integer"),
    }
    match body.get("messages") {
        None | Some(Value::Null) => Some("messages: Field required"),
        Some(Value::Array(messages)) if messages.is_empty() => {
            Some("messages: at least one message is required")
        }
        Some(Value::Array(_)) => None,
        Some(_) => Some("messages: Input should be a valid list"),
    }
}

/// The name of the tool to call: the first tool's, if the request has
/// `tools` and its last user message mentions [`TOOL_TRIGGER`].
fn tool_to_call(body: &Value) -> Option<String> {
    let first_tool = body.get("tools")?.as_array()?.first()?;
    let last_user = body
        .get("messages")?
        .as_array()?
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))?;
    if !user_text(last_user)
        .to_ascii_lowercase()
        .contains(TOOL_TRIGGER)
    {
        return None;
    }
    let name = first_tool
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or(FALLBACK_TOOL);
    Some(name.to_owned())
}

/// The text of a message: its string content, or its `text` blocks joined
/// (tool results and other blocks are ignored).
fn user_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The scripted `tool_use` block.
struct ToolUse {
    id: String,
    name: String,
}

/// A successful answer, rendered as a message or as a stream.
struct Answer {
    id: String,
    model: String,
    tool: Option<ToolUse>,
}

impl Answer {
    fn text(&self) -> &'static str {
        if self.tool.is_some() {
            TOOL_PREAMBLE
        } else {
            REPLY
        }
    }

    fn stop_reason(&self) -> &'static str {
        if self.tool.is_some() {
            "tool_use"
        } else {
            "end_turn"
        }
    }

    /// The non-streamed `message` object.
    fn message(&self, b: &Behaviour) -> Value {
        let mut content = vec![json!({"type": "text", "text": self.text()})];
        if let Some(tool) = &self.tool {
            content.push(json!({
                "type": "tool_use",
                "id": tool.id,
                "name": tool.name,
                "input": tool_input(),
            }));
        }
        let mut message = json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": self.stop_reason(),
            "stop_sequence": null,
        });
        if !b.omit_usage {
            message["usage"] = json!({
                "input_tokens": b.prompt_tokens,
                "output_tokens": b.completion_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            });
        }
        message
    }

    /// The stream's events, in order.
    fn events(&self, b: &Behaviour) -> Vec<Bytes> {
        let start_usage = if b.omit_usage {
            json!({})
        } else {
            json!({
                "input_tokens": b.prompt_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": 1,
            })
        };
        let delta_usage = if b.omit_usage {
            json!({})
        } else {
            json!({"output_tokens": b.completion_tokens})
        };

        let mut events = vec![
            event(
                "message_start",
                json!({"message": {
                    "id": self.id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": start_usage,
                }}),
            ),
            event(
                "content_block_start",
                json!({"index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            event("ping", json!({})),
        ];
        for piece in word_pieces(self.text()) {
            events.push(event(
                "content_block_delta",
                json!({"index": 0, "delta": {"type": "text_delta", "text": piece}}),
            ));
        }
        events.push(event("content_block_stop", json!({"index": 0})));
        if let Some(tool) = &self.tool {
            events.push(event(
                "content_block_start",
                json!({"index": 1, "content_block": {
                    "type": "tool_use",
                    "id": tool.id,
                    "name": tool.name,
                    "input": {},
                }}),
            ));
            for piece in TOOL_INPUT_PIECES {
                events.push(event(
                    "content_block_delta",
                    json!({"index": 1, "delta": {"type": "input_json_delta", "partial_json": piece}}),
                ));
            }
            events.push(event("content_block_stop", json!({"index": 1})));
        }
        events.push(event(
            "message_delta",
            json!({
                "delta": {"stop_reason": self.stop_reason(), "stop_sequence": null},
                "usage": delta_usage,
            }),
        ));
        events.push(event("message_stop", json!({})));
        events
    }
}

/// The scripted tool input (what [`TOOL_INPUT_PIECES`] concatenate to).
fn tool_input() -> Value {
    json!({"city": "Paris"})
}

/// One SSE event: `fields` (a JSON object) with `"type": name` put first.
fn event(name: &str, fields: Value) -> Bytes {
    let mut data = Map::new();
    data.insert("type".to_owned(), Value::from(name));
    if let Value::Object(fields) = fields {
        data.extend(fields);
    }
    sse_named(name, &data)
}

/// Anthropic's error body: `{"type":"error","error":{"type":..,"message":..}}`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    json_bytes(status, to_json(&body))
}

/// Anthropic's answer to a request [`Stub::admit`] turned away.
fn rejection(rejected: Rejected) -> Response {
    match rejected {
        Rejected::Unauthorized => error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        ),
        Rejected::Invalid(message) => {
            error(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    }
}

/// Anthropic's `error.type` for an HTTP status, per its errors page.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    }
}

/// The Anthropic-style error answer for a non-200 [`Behaviour`].
fn behaviour_error(b: &Behaviour) -> Response {
    let status = error_status(b);
    let kind = b.error_code.as_deref().unwrap_or(error_type(status));
    let mut response = error(status, kind, &b.message());
    retry_headers(&mut response, b);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_the_required_fields() {
        let ok =
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(validate(&ok), None);
        let with = |key: &str, value: Value| {
            let mut body = ok.clone();
            body[key] = value;
            validate(&body)
        };
        assert_eq!(with("model", Value::Null), Some("model: Field required"));
        assert_eq!(
            with("max_tokens", Value::Null),
            Some("max_tokens: Field required")
        );
        assert!(with("max_tokens", json!(0)).is_some());
        assert!(with("max_tokens", json!(-3)).is_some());
        assert!(with("max_tokens", json!(1.5)).is_some());
        assert!(with("max_tokens", json!("5")).is_some());
        assert!(with("messages", json!([])).is_some());
        assert!(with("messages", json!("hi")).is_some());
        assert!(validate(&json!({"model": "m", "max_tokens": 1})).is_some());
    }

    #[test]
    fn tool_use_needs_tools_and_weather_in_the_last_user_text() {
        let tools = json!([{"name": "get_weather", "input_schema": {"type": "object"}}]);
        let body = |messages: Value| json!({"tools": tools, "messages": messages});
        assert_eq!(
            tool_to_call(&body(
                json!([{"role": "user", "content": "What's the Weather in Paris?"}])
            )),
            Some("get_weather".to_owned())
        );
        assert_eq!(
            tool_to_call(&body(json!([{"role": "user", "content": [
                {"type": "text", "text": "weather please"}
            ]}]))),
            Some("get_weather".to_owned())
        );
        // A tool result as the last user turn ends the loop.
        assert_eq!(
            tool_to_call(&body(json!([
                {"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "get_weather", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "weather: sunny"}]},
            ]))),
            None
        );
        assert_eq!(
            tool_to_call(&json!({"messages": [{"role": "user", "content": "weather"}]})),
            None
        );
        assert_eq!(
            tool_to_call(&body(json!([{"role": "user", "content": "hello"}]))),
            None
        );
    }

    #[test]
    fn tool_input_pieces_concatenate_to_the_input() {
        let joined: String = TOOL_INPUT_PIECES.concat();
        assert_eq!(
            serde_json::from_str::<Value>(&joined).ok(),
            Some(tool_input())
        );
    }
}
