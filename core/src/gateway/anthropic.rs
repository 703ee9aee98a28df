//! Serving OpenAI-shaped chat completions from an Anthropic upstream.
//!
//! Callers speak OpenAI's Chat Completions API; a route whose provider is
//! Anthropic is answered by the Messages API (`POST /v1/messages`, header
//! `anthropic-version: ANTHROPIC_VERSION`). This module holds the pure
//! translations, both ways, and no I/O:
//!
//! * [`chat_to_messages`]: the caller's request → a Messages request body,
//!   or [`Untranslatable`] (a 400 for the caller) when the request asks for
//!   something Anthropic cannot do (several choices, JSON mode, audio…).
//! * [`message_to_chat`] and [`usage_of_message`]: a Messages response → a
//!   `chat.completion` and the tokens to charge.
//! * [`StreamTranslator`]: Anthropic's server-sent events → OpenAI's
//!   `chat.completion.chunk` events, byte by byte as they arrive, keeping the
//!   usage for the ledger.
//! * [`error_to_openai`]: an Anthropic error body → an OpenAI error body.
//!
//! Everything works on `serde_json::Value` and never panics, whatever the
//! shape of the JSON it is given.

use std::collections::HashMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Map, Value};

/// The Anthropic API version header value Paved sends.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Why a request cannot be translated (shown to the caller as a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untranslatable(pub String);

impl fmt::Display for Untranslatable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Untranslatable {}

fn refuse(message: impl Into<String>) -> Untranslatable {
    Untranslatable(message.into())
}

/// The image media types Anthropic accepts in a base64 source.
const IMAGE_MEDIA_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/gif", "image/webp"];

/// The longest SSE line the stream translator buffers; a longer one (never
/// sent by Anthropic) is dropped rather than held in memory.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// One Anthropic message under construction. `plain` means it came from a
/// single OpenAI message whose content was a string, and is sent as a string.
struct Turn {
    role: &'static str,
    blocks: Vec<Value>,
    plain: bool,
}

impl Turn {
    fn into_value(self) -> Value {
        let content = if self.plain {
            let text = self
                .blocks
                .first()
                .and_then(|b| b["text"].as_str())
                .unwrap_or_default();
            Value::String(text.to_owned())
        } else {
            Value::Array(self.blocks)
        };
        json!({"role": self.role, "content": content})
    }
}

/// Appends a turn, merging it into the previous one when both have the same
/// role (Anthropic wants user and assistant turns to alternate).
fn push_turn(turns: &mut Vec<Turn>, turn: Turn) {
    match turns.last_mut() {
        Some(last) if last.role == turn.role => {
            last.plain = false;
            last.blocks.extend(turn.blocks);
        }
        _ => turns.push(turn),
    }
}

/// Which roles' content parts are being read (each allows different parts).
#[derive(Clone, Copy, PartialEq, Eq)]
enum PartsOf {
    System,
    User,
    Assistant,
    Tool,
}

/// Content blocks for an OpenAI `content` (string or array of parts); the bool
/// says it was a string. `Null` gives no blocks. Empty text is left out
/// (Anthropic refuses empty text blocks).
fn content_blocks(
    content: &Value,
    at: &str,
    parts_of: PartsOf,
) -> Result<(Vec<Value>, bool), Untranslatable> {
    match content {
        Value::Null => Ok((Vec::new(), false)),
        Value::String(s) => Ok((text_blocks(s), true)),
        Value::Array(parts) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let kind = part["type"].as_str().ok_or_else(|| {
                    refuse(format!(
                        "{at}.content[{j}] must be an object with a string `type`."
                    ))
                })?;
                match (kind, parts_of) {
                    ("text", _) => {
                        let text = part["text"].as_str().ok_or_else(|| {
                            refuse(format!("{at}.content[{j}].text must be a string."))
                        })?;
                        blocks.extend(text_blocks(text));
                    }
                    ("refusal", PartsOf::Assistant) => {
                        let text = part["refusal"].as_str().ok_or_else(|| {
                            refuse(format!("{at}.content[{j}].refusal must be a string."))
                        })?;
                        blocks.extend(text_blocks(text));
                    }
                    ("image_url", PartsOf::User) => {
                        let url = part["image_url"]["url"]
                            .as_str()
                            .or_else(|| part["image_url"].as_str())
                            .ok_or_else(|| {
                                refuse(format!("{at}.content[{j}].image_url.url must be a string."))
                            })?;
                        blocks.push(image_block(url, &format!("{at}.content[{j}]"))?);
                    }
                    (other, _) => {
                        return Err(refuse(format!(
                            "Content part type `{other}` ({at}.content[{j}]) cannot be sent to an Anthropic model."
                        )))
                    }
                }
            }
            Ok((blocks, false))
        }
        _ => Err(refuse(format!(
            "{at}.content must be a string or an array of content parts."
        ))),
    }
}

fn text_blocks(text: &str) -> Vec<Value> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![json!({"type": "text", "text": text})]
    }
}

/// The joined text of a content that may only hold text parts.
fn text_of(content: &Value, at: &str, parts_of: PartsOf) -> Result<String, Untranslatable> {
    let (blocks, _) = content_blocks(content, at, parts_of)?;
    let texts: Vec<&str> = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
    Ok(texts.join(if parts_of == PartsOf::System {
        "\n\n"
    } else {
        ""
    }))
}

/// An Anthropic image block for an OpenAI `image_url` URL: a base64 `data:`
/// URL becomes a base64 source, an http(s) URL a URL source.
fn image_block(url: &str, at: &str) -> Result<Value, Untranslatable> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("data") => {
            let rest = &url[5..];
            let (meta, data) = rest
                .split_once(',')
                .ok_or_else(|| refuse(format!("{at}: the image data URL has no data.")))?;
            let mut params = meta.split(';');
            let media_type = params
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
                return Err(refuse(format!(
                    "{at}: only base64 image data URLs (data:image/png;base64,…) can be sent to an Anthropic model."
                )));
            }
            let media_type = if media_type == "image/jpg" {
                "image/jpeg".to_owned()
            } else {
                media_type
            };
            if !IMAGE_MEDIA_TYPES.contains(&media_type.as_str()) {
                return Err(refuse(format!(
                    "{at}: image type `{media_type}` is not supported by Anthropic (use JPEG, PNG, GIF or WebP)."
                )));
            }
            Ok(
                json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
            )
        }
        Some("http") | Some("https") => {
            Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
        }
        _ => Err(refuse(format!(
            "{at}: an image URL must be an http(s) URL or a base64 data URL."
        ))),
    }
}

/// `tool_use` blocks for an assistant message's OpenAI `tool_calls`.
fn tool_use_blocks(tool_calls: &Value, at: &str) -> Result<Vec<Value>, Untranslatable> {
    let calls = match tool_calls {
        Value::Null => return Ok(Vec::new()),
        Value::Array(calls) => calls,
        _ => return Err(refuse(format!("{at}.tool_calls must be an array."))),
    };
    let mut blocks = Vec::with_capacity(calls.len());
    for (j, call) in calls.iter().enumerate() {
        let at = format!("{at}.tool_calls[{j}]");
        if !call.is_object() {
            return Err(refuse(format!("{at} must be an object.")));
        }
        match &call["type"] {
            Value::Null => {}
            Value::String(t) if t == "function" => {}
            other => {
                return Err(refuse(format!(
                    "{at}: tool call type {other} cannot be sent to an Anthropic model (only `function`)."
                )))
            }
        }
        let id = call["id"]
            .as_str()
            .ok_or_else(|| refuse(format!("{at}.id must be a string.")))?;
        let function = &call["function"];
        let name = function["name"]
            .as_str()
            .ok_or_else(|| refuse(format!("{at}.function.name must be a string.")))?;
        let input = match &function["arguments"] {
            Value::Null => json!({}),
            Value::String(s) if s.trim().is_empty() => json!({}),
            Value::String(s) => serde_json::from_str::<Value>(s)
                .map_err(|e| refuse(format!("{at}.function.arguments is not valid JSON: {e}.")))?,
            object @ Value::Object(_) => object.clone(),
            _ => {
                return Err(refuse(format!(
                    "{at}.function.arguments must be a JSON string."
                )))
            }
        };
        if !input.is_object() {
            return Err(refuse(format!(
                "{at}.function.arguments must encode a JSON object."
            )));
        }
        blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    Ok(blocks)
}

/// Anthropic `tools` for OpenAI `tools`; `None` when there are none.
fn tools_of(tools: &Value) -> Result<Option<Vec<Value>>, Untranslatable> {
    let list = match tools {
        Value::Null => return Ok(None),
        Value::Array(list) => list,
        _ => return Err(refuse("`tools` must be an array.")),
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        if !tool.is_object() {
            return Err(refuse(format!("tools[{i}] must be an object.")));
        }
        match &tool["type"] {
            Value::Null => {}
            Value::String(t) if t == "function" => {}
            other => {
                return Err(refuse(format!(
                    "tools[{i}]: tool type {other} cannot be sent to an Anthropic model (only `function`)."
                )))
            }
        }
        let function = &tool["function"];
        let name = function["name"]
            .as_str()
            .ok_or_else(|| refuse(format!("tools[{i}].function.name must be a string.")))?;
        let schema = match &function["parameters"] {
            Value::Null => json!({"type": "object", "properties": {}}),
            schema @ Value::Object(_) => schema.clone(),
            _ => {
                return Err(refuse(format!(
                    "tools[{i}].function.parameters must be a JSON Schema object."
                )))
            }
        };
        let mut entry = Map::new();
        entry.insert("name".into(), json!(name));
        match &function["description"] {
            Value::Null => {}
            Value::String(d) => {
                entry.insert("description".into(), json!(d));
            }
            _ => {
                return Err(refuse(format!(
                    "tools[{i}].function.description must be a string."
                )))
            }
        }
        entry.insert("input_schema".into(), schema);
        out.push(Value::Object(entry));
    }
    Ok((!out.is_empty()).then_some(out))
}

/// Anthropic `tool_choice` for OpenAI `tool_choice` and `parallel_tool_calls`.
fn tool_choice_of(choice: &Value, parallel: &Value) -> Result<Option<Value>, Untranslatable> {
    let mut choice = match choice {
        Value::Null => None,
        Value::String(s) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            other => {
                return Err(refuse(format!(
                    "tool_choice `{other}` is not one of `auto`, `required`, `none`."
                )))
            }
        }),
        Value::Object(o) => {
            let kind = o.get("type").and_then(Value::as_str).unwrap_or_default();
            if kind != "function" {
                return Err(refuse(format!(
                    "tool_choice type `{kind}` cannot be sent to an Anthropic model (use `function`)."
                )));
            }
            let name = choice["function"]["name"]
                .as_str()
                .ok_or_else(|| refuse("tool_choice.function.name must be a string."))?;
            Some(json!({"type": "tool", "name": name}))
        }
        _ => return Err(refuse("`tool_choice` must be a string or an object.")),
    };
    if parallel == &Value::Bool(false) {
        let choice = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if choice["type"] != "none" {
            if let Some(o) = choice.as_object_mut() {
                o.insert("disable_parallel_tool_use".into(), Value::Bool(true));
            }
        }
    }
    Ok(choice)
}

/// OpenAI chat request (already-parsed JSON object) → Anthropic Messages request body.
/// `upstream_model` replaces `model`; `max_tokens` is the output ceiling the gateway holds budget for
/// (Anthropic requires max_tokens): use it always (the gateway computes it from max_completion_tokens/max_tokens or the model's default).
///
/// System and developer messages become the top-level `system` string;
/// `tool` messages become `tool_result` blocks in a user turn; consecutive
/// same-role turns are merged. Sampling fields map (temperature clamped to
/// Anthropic's 0..=1), OpenAI-only knobs are dropped, and requests Anthropic
/// cannot honour (`n` > 1, JSON mode, audio, unknown content parts) are
/// refused with a message for the caller.
pub fn chat_to_messages(
    request: &Value,
    upstream_model: &str,
    max_tokens: i64,
) -> Result<Value, Untranslatable> {
    let req = request
        .as_object()
        .ok_or_else(|| refuse("The request body must be a JSON object."))?;
    let field = |name: &str| req.get(name).unwrap_or(&Value::Null);

    match field("n") {
        Value::Null => {}
        Value::Number(n) if n.as_f64() == Some(1.0) => {}
        Value::Number(_) => {
            return Err(refuse(
                "`n` must be 1 for this model: Anthropic returns one choice.",
            ))
        }
        _ => return Err(refuse("`n` must be a number.")),
    }
    match field("response_format") {
        Value::Null => {}
        format => match format["type"].as_str() {
            Some("text") => {}
            Some(kind @ ("json_object" | "json_schema")) => {
                return Err(refuse(format!(
                    "response_format `{kind}` is not supported for Anthropic models; ask for JSON in the prompt (or describe the schema as a tool) instead."
                )))
            }
            Some(kind) => {
                return Err(refuse(format!("response_format `{kind}` is not supported.")))
            }
            None => return Err(refuse("response_format must be an object with a `type`.")),
        },
    }
    if let Some(modalities) = field("modalities").as_array() {
        if modalities.iter().any(|m| m != "text") {
            return Err(refuse(
                "Anthropic models only produce text: `modalities` must be [\"text\"].",
            ));
        }
    }
    if !field("audio").is_null() {
        return Err(refuse("Anthropic models cannot produce audio output."));
    }
    if !field("functions").is_null() || !field("function_call").is_null() {
        return Err(refuse(
            "The deprecated `functions`/`function_call` fields are not supported here; use `tools`/`tool_choice`.",
        ));
    }

    let messages = field("messages")
        .as_array()
        .ok_or_else(|| refuse("`messages` must be an array."))?;
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let at = format!("messages[{i}]");
        if !message.is_object() {
            return Err(refuse(format!("{at} must be an object.")));
        }
        let role = message["role"]
            .as_str()
            .ok_or_else(|| refuse(format!("{at}.role must be a string.")))?;
        let content = &message["content"];
        match role {
            "system" | "developer" => {
                let text = text_of(content, &at, PartsOf::System)?;
                if !text.is_empty() {
                    system.push(text);
                }
            }
            "user" => {
                if content.is_null() {
                    return Err(refuse(format!("{at}.content is required.")));
                }
                let (blocks, plain) = content_blocks(content, &at, PartsOf::User)?;
                push_turn(
                    &mut turns,
                    Turn {
                        role: "user",
                        blocks,
                        plain,
                    },
                );
            }
            "assistant" => {
                let (mut blocks, plain) = content_blocks(content, &at, PartsOf::Assistant)?;
                let tool_uses = tool_use_blocks(&message["tool_calls"], &at)?;
                let plain = plain && tool_uses.is_empty();
                blocks.extend(tool_uses);
                // An empty assistant turn says nothing and Anthropic refuses it.
                if !blocks.is_empty() {
                    push_turn(
                        &mut turns,
                        Turn {
                            role: "assistant",
                            blocks,
                            plain,
                        },
                    );
                }
            }
            "tool" => {
                let id = message["tool_call_id"]
                    .as_str()
                    .ok_or_else(|| refuse(format!("{at}.tool_call_id must be a string.")))?;
                let text = text_of(content, &at, PartsOf::Tool)?;
                let block = json!({"type": "tool_result", "tool_use_id": id, "content": text});
                push_turn(
                    &mut turns,
                    Turn {
                        role: "user",
                        blocks: vec![block],
                        plain: false,
                    },
                );
            }
            "function" => {
                return Err(refuse(format!(
                    "{at}: the deprecated `function` role is not supported; use `tool` messages."
                )))
            }
            other => return Err(refuse(format!("{at}: unknown role `{other}`."))),
        }
    }
    if turns.is_empty() {
        return Err(refuse(
            "At least one user or assistant message is required for an Anthropic model.",
        ));
    }
    // Anthropic wants a user turn's tool results before anything else in it.
    for turn in turns.iter_mut().filter(|t| t.role == "user" && !t.plain) {
        let (mut results, rest): (Vec<Value>, Vec<Value>) = std::mem::take(&mut turn.blocks)
            .into_iter()
            .partition(|b| b["type"] == "tool_result");
        results.extend(rest);
        turn.blocks = results;
    }

    let mut body = Map::new();
    body.insert("model".into(), json!(upstream_model));
    body.insert("max_tokens".into(), json!(max_tokens));
    body.insert(
        "messages".into(),
        Value::Array(turns.into_iter().map(Turn::into_value).collect()),
    );
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    if let Some(tools) = tools_of(field("tools"))? {
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = tool_choice_of(field("tool_choice"), field("parallel_tool_calls"))? {
            body.insert("tool_choice".into(), choice);
        }
    }
    match field("temperature") {
        Value::Null => {}
        Value::Number(t) => {
            let t = t.as_f64().unwrap_or(1.0).clamp(0.0, 1.0);
            body.insert("temperature".into(), json!(t));
        }
        _ => return Err(refuse("`temperature` must be a number.")),
    }
    match field("top_p") {
        Value::Null => {}
        Value::Number(p) => {
            body.insert("top_p".into(), Value::Number(p.clone()));
        }
        _ => return Err(refuse("`top_p` must be a number.")),
    }
    let stops: Vec<Value> = match field("stop") {
        Value::Null => Vec::new(),
        Value::String(s) => vec![json!(s)],
        Value::Array(list) => {
            if list.iter().any(|s| !s.is_string()) {
                return Err(refuse("`stop` must be a string or an array of strings."));
            }
            list.clone()
        }
        _ => return Err(refuse("`stop` must be a string or an array of strings.")),
    };
    if !stops.is_empty() {
        body.insert("stop_sequences".into(), Value::Array(stops));
    }
    if let Some(stream) = field("stream").as_bool() {
        body.insert("stream".into(), json!(stream));
    }
    let user = field("user")
        .as_str()
        .or_else(|| field("safety_identifier").as_str())
        .filter(|u| !u.is_empty());
    if let Some(user) = user {
        body.insert("metadata".into(), json!({"user_id": user}));
    }
    Ok(Value::Object(body))
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// OpenAI `finish_reason` for an Anthropic `stop_reason`.
fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") | Some("model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn, anything newer, or none.
        _ => "stop",
    }
}

/// A non-negative token count, or `None` when absent or not an integer.
fn tokens(v: &Value) -> Option<i64> {
    v.as_i64().map(|n| n.max(0))
}

/// `(input incl. cache, cache reads, output)` from an Anthropic `usage`.
fn usage_parts(usage: &Value) -> Option<(i64, i64, i64)> {
    let input = tokens(&usage["input_tokens"])?;
    let output = tokens(&usage["output_tokens"])?;
    let created = tokens(&usage["cache_creation_input_tokens"]).unwrap_or(0);
    let read = tokens(&usage["cache_read_input_tokens"]).unwrap_or(0);
    Some((
        input.saturating_add(created).saturating_add(read),
        read,
        output,
    ))
}

fn openai_usage(input: i64, cached: i64, output: i64) -> Value {
    json!({
        "prompt_tokens": input,
        "completion_tokens": output,
        "total_tokens": input.saturating_add(output),
        "prompt_tokens_details": {"cached_tokens": cached},
    })
}

/// (input, output) tokens from an Anthropic Messages response's `usage` (input includes cache creation and cache read input tokens). None when usage is missing.
pub fn usage_of_message(response: &Value) -> Option<(i64, i64)> {
    usage_parts(&response["usage"]).map(|(input, _, output)| (input, output))
}

/// Anthropic Messages response JSON → OpenAI chat.completion JSON (model = `model_for_caller`).
///
/// Text blocks are concatenated into `content` (`null` when there are none),
/// `tool_use` blocks become `tool_calls`, thinking and server-tool blocks are
/// left out; `created` is the current time.
pub fn message_to_chat(response: &Value, model_for_caller: &str) -> Value {
    let mut text = String::new();
    let mut has_text = false;
    let mut tool_calls = Vec::new();
    for block in response["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        match block["type"].as_str() {
            Some("text") => {
                if let Some(t) = block["text"].as_str() {
                    text.push_str(t);
                    has_text = true;
                }
            }
            Some("tool_use") => {
                let arguments = match &block["input"] {
                    Value::Null => "{}".to_owned(),
                    input => input.to_string(),
                };
                tool_calls.push(json!({
                    "id": block["id"].as_str().unwrap_or_default(),
                    "type": "function",
                    "function": {
                        "name": block["name"].as_str().unwrap_or_default(),
                        "arguments": arguments,
                    },
                }));
            }
            _ => {}
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if has_text { json!(text) } else { Value::Null },
    );
    message.insert("refusal".into(), Value::Null);
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let mut chat = json!({
        "id": format!("chatcmpl-{}", response["id"].as_str().unwrap_or_default()),
        "object": "chat.completion",
        "created": unix_now(),
        "model": model_for_caller,
        "choices": [{
            "index": 0,
            "message": Value::Object(message),
            "logprobs": null,
            "finish_reason": finish_reason(response["stop_reason"].as_str()),
        }],
    });
    if let Some((input, cached, output)) = usage_parts(&response["usage"]) {
        chat["usage"] = openai_usage(input, cached, output);
    }
    chat
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// OpenAI error `type` for an Anthropic error type.
fn openai_error_type(anthropic: &str) -> &str {
    match anthropic {
        "invalid_request_error" | "request_too_large" | "not_found_error" => {
            "invalid_request_error"
        }
        "billing_error" => "insufficient_quota",
        "api_error" | "overloaded_error" | "timeout_error" => "server_error",
        // authentication_error, permission_error, rate_limit_error, newer ones.
        other => other,
    }
}

/// The first `max` bytes of `s`, cut at a character boundary.
fn truncated(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The OpenAI error object for a parsed Anthropic error body (or SSE `error`
/// event data); `raw` is the text to fall back on when it holds no message.
fn openai_error(parsed: Option<&Value>, raw: &str) -> Value {
    let error = parsed.map(|v| &v["error"]).unwrap_or(&Value::Null);
    let message = error["message"]
        .as_str()
        .or_else(|| error.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let raw = raw.trim();
            if raw.is_empty() {
                "The Anthropic upstream returned an error without a message.".to_owned()
            } else {
                format!("The Anthropic upstream returned: {}", truncated(raw, 1000))
            }
        });
    let (kind, code) = match error["type"].as_str() {
        Some(kind) => (openai_error_type(kind).to_owned(), json!(kind)),
        None => ("upstream_error".to_owned(), json!("upstream_error")),
    };
    json!({"error": {"message": message, "type": kind, "code": code, "param": null}})
}

/// Anthropic error body → OpenAI error body {"error":{"message","type","code","param"}} (keeps the message).
///
/// `type` is the nearest OpenAI error type (`invalid_request_error`,
/// `server_error` for api/overloaded/timeout errors, …) and `code` keeps
/// Anthropic's own error type (e.g. `overloaded_error`). A body that is not
/// Anthropic's JSON is quoted (up to 1,000 bytes) in the message.
pub fn error_to_openai(body: &[u8]) -> Bytes {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let raw = String::from_utf8_lossy(body);
    Bytes::from(openai_error(parsed.as_ref(), &raw).to_string())
}

// ---------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------

/// A `tool_use` content block being streamed.
struct ToolBlock {
    /// Its position among the message's tool calls (OpenAI's `index`).
    index: usize,
    /// Argument bytes sent so far.
    sent: u64,
}

/// Translates Anthropic SSE events into OpenAI chat.completion.chunk SSE events, incrementally.
///
/// The first chunk carries `{"role":"assistant","content":""}`; text deltas
/// become `content` deltas, tool-use blocks become `tool_calls` deltas
/// (a start with id and name, then argument fragments), `message_delta`'s
/// stop reason becomes a `finish_reason` chunk, and `message_stop` ends the
/// stream with the usage chunk (when asked for) and `data: [DONE]`. Thinking
/// blocks, `ping` and unknown events are dropped. An `error` event becomes
/// `data: {"error":{…}}` and ends the translation.
pub struct StreamTranslator {
    model: String,
    include_usage: bool,
    created: u64,
    id: String,
    // SSE framing.
    line: Vec<u8>,
    line_too_long: bool,
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    // Translation.
    started: bool,
    tools: HashMap<u64, ToolBlock>,
    tool_count: usize,
    finish_sent: bool,
    stopped: bool,
    failed: bool,
    input: Option<i64>,
    cached: i64,
    output: i64,
    usage_complete: bool,
    output_bytes: u64,
}

impl StreamTranslator {
    /// `include_usage`: emit OpenAI's final usage chunk (choices: []) before `data: [DONE]`.
    pub fn new(model_for_caller: &str, include_usage: bool) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            model: model_for_caller.to_owned(),
            include_usage,
            created: now.as_secs(),
            // Replaced by the Anthropic message id at message_start.
            id: format!("chatcmpl-{}", now.as_nanos()),
            line: Vec::new(),
            line_too_long: false,
            after_cr: false,
            event: String::new(),
            data: String::new(),
            has_data: false,
            started: false,
            tools: HashMap::new(),
            tool_count: 0,
            finish_sent: false,
            stopped: false,
            failed: false,
            input: None,
            cached: 0,
            output: 0,
            usage_complete: false,
            output_bytes: 0,
        }
    }

    /// Feeds raw bytes from the upstream (events may be split across calls at any byte); returns the OpenAI SSE bytes to send now (possibly empty).
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = Vec::new();
        let mut rest = chunk;
        while !rest.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if rest[0] == b'\n' {
                    rest = &rest[1..];
                    continue;
                }
            }
            match rest.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.append_to_line(&rest[..end]);
                    self.after_cr = rest[end] == b'\r';
                    rest = &rest[end + 1..];
                    self.end_line(&mut out);
                }
                None => {
                    self.append_to_line(rest);
                    rest = &[];
                }
            }
        }
        Bytes::from(out)
    }

    /// Called when the upstream ends; returns any remaining bytes (incl. `data: [DONE]\n\n` if message_stop was seen).
    ///
    /// A last event the upstream did not terminate with a blank line is
    /// still translated. A stream that ended without `message_stop` gets no
    /// `[DONE]`, so the caller can tell it was cut off.
    pub fn finish(&mut self) -> Bytes {
        let mut out = Vec::new();
        if !self.line.is_empty() || self.line_too_long {
            self.end_line(&mut out);
        }
        self.dispatch(&mut out);
        Bytes::from(out)
    }

    /// (input_tokens, output_tokens) seen so far: input from message_start's usage (input_tokens + cache_creation_input_tokens + cache_read_input_tokens), output from the latest message_delta usage.output_tokens (cumulative per Anthropic). None until message_start gave usage.
    ///
    /// When a `message_delta` also carries (cumulative) input counts, as it
    /// does when server tools ran, the larger input total is kept.
    pub fn usage(&self) -> Option<(i64, i64)> {
        self.input.map(|input| (input, self.output))
    }

    /// Whether message_delta carried usage (i.e. the stream's usage is complete).
    pub fn usage_complete(&self) -> bool {
        self.usage_complete
    }

    /// Bytes of generated text and tool-call JSON seen so far (an upper bound on output tokens).
    ///
    /// Thinking text counts too: Anthropic bills it as output.
    pub fn output_bytes(&self) -> u64 {
        self.output_bytes
    }

    /// Whether the upstream sent an `error` event (e.g. overloaded_error mid-stream); its OpenAI-shaped error is emitted as a data event.
    pub fn failed(&self) -> bool {
        self.failed
    }

    fn append_to_line(&mut self, bytes: &[u8]) {
        if self.line_too_long {
            return;
        }
        if self.line.len().saturating_add(bytes.len()) > MAX_LINE_BYTES {
            self.line_too_long = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// Handles one complete SSE line (without its terminator).
    fn end_line(&mut self, out: &mut Vec<u8>) {
        let line = std::mem::take(&mut self.line);
        if std::mem::take(&mut self.line_too_long) {
            return;
        }
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        // Lines end at CR/LF bytes, which never occur inside a multi-byte
        // UTF-8 character, so a whole line decodes on its own.
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match name {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
    }

    /// Translates the event gathered so far (at a blank line).
    fn dispatch(&mut self, out: &mut Vec<u8>) {
        let event = std::mem::take(&mut self.event);
        let data = std::mem::take(&mut self.data);
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        let parsed = serde_json::from_str::<Value>(&data).ok();
        let kind = parsed
            .as_ref()
            .and_then(|v| v["type"].as_str())
            .unwrap_or(&event)
            .to_owned();
        if kind == "error" {
            if !self.stopped && !self.failed {
                self.failed = true;
                emit(out, &openai_error(parsed.as_ref(), &data));
            }
            return;
        }
        if let Some(v) = parsed {
            self.handle(&kind, &v, out);
        }
    }

    fn handle(&mut self, kind: &str, v: &Value, out: &mut Vec<u8>) {
        if self.stopped || self.failed {
            return;
        }
        match kind {
            "message_start" => {
                let message = &v["message"];
                if !self.started {
                    if let Some(id) = message["id"].as_str() {
                        self.id = format!("chatcmpl-{id}");
                    }
                }
                if let Some((input, cached, output)) = usage_parts(&message["usage"]) {
                    self.input = Some(input);
                    self.cached = cached;
                    self.output = output;
                }
                self.start(out);
            }
            "content_block_start" => {
                let block = &v["content_block"];
                match block["type"].as_str() {
                    Some("text") => {
                        self.start(out);
                        let text = block["text"].as_str().unwrap_or_default();
                        self.text(text, out);
                    }
                    Some("tool_use") => {
                        self.start(out);
                        let index = self.tool_count;
                        self.tool_count += 1;
                        if let Some(block_index) = v["index"].as_u64() {
                            self.tools.insert(block_index, ToolBlock { index, sent: 0 });
                        }
                        let delta = json!({"tool_calls": [{
                            "index": index,
                            "id": block["id"].as_str().unwrap_or_default(),
                            "type": "function",
                            "function": {
                                "name": block["name"].as_str().unwrap_or_default(),
                                "arguments": "",
                            },
                        }]});
                        self.chunk(delta, None, out);
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = &v["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        let text = delta["text"].as_str().unwrap_or_default();
                        self.text(text, out);
                    }
                    Some("input_json_delta") => {
                        let json = delta["partial_json"].as_str().unwrap_or_default();
                        self.output_bytes = self.output_bytes.saturating_add(json.len() as u64);
                        let tool = v["index"].as_u64().and_then(|i| self.tools.get_mut(&i));
                        if let (Some(tool), false) = (tool, json.is_empty()) {
                            tool.sent = tool.sent.saturating_add(json.len() as u64);
                            let index = tool.index;
                            let delta = json!({"tool_calls": [{"index": index, "function": {"arguments": json}}]});
                            self.chunk(delta, None, out);
                        }
                    }
                    Some("thinking_delta") => {
                        let thinking = delta["thinking"].as_str().unwrap_or_default();
                        self.output_bytes = self.output_bytes.saturating_add(thinking.len() as u64);
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let tool = v["index"].as_u64().and_then(|i| self.tools.get_mut(&i));
                // A tool without arguments streams none; OpenAI callers
                // expect its arguments to parse, so send an empty object.
                if let Some(tool) = tool.filter(|t| t.sent == 0) {
                    tool.sent = 2;
                    let index = tool.index;
                    let delta =
                        json!({"tool_calls": [{"index": index, "function": {"arguments": "{}"}}]});
                    self.chunk(delta, None, out);
                }
            }
            "message_delta" => {
                let usage = &v["usage"];
                if let Some(output) = tokens(&usage["output_tokens"]) {
                    self.output = output;
                    self.usage_complete = true;
                }
                if let Some(input) = tokens(&usage["input_tokens"]) {
                    let created = tokens(&usage["cache_creation_input_tokens"]).unwrap_or(0);
                    let read = tokens(&usage["cache_read_input_tokens"]);
                    let total = input
                        .saturating_add(created)
                        .saturating_add(read.unwrap_or(0));
                    if self.input.is_none_or(|seen| total > seen) {
                        self.input = Some(total);
                        self.cached = read.unwrap_or(self.cached);
                    }
                }
                if let Some(reason) = v["delta"]["stop_reason"].as_str() {
                    self.finish_chunk(Some(reason), out);
                }
            }
            "message_stop" => {
                self.finish_chunk(None, out);
                if self.include_usage {
                    if let Some((input, output)) = self.usage() {
                        let usage = json!({
                            "id": self.id,
                            "object": "chat.completion.chunk",
                            "created": self.created,
                            "model": self.model,
                            "choices": [],
                            "usage": openai_usage(input, self.cached, output),
                        });
                        emit(out, &usage);
                    }
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.stopped = true;
            }
            // ping, and events newer than this translator.
            _ => {}
        }
    }

    /// Sends the opening chunk (role and empty content) once.
    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            self.started = true;
            self.chunk(json!({"role": "assistant", "content": ""}), None, out);
        }
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        self.output_bytes = self.output_bytes.saturating_add(text.len() as u64);
        if !text.is_empty() {
            self.start(out);
            self.chunk(json!({"content": text}), None, out);
        }
    }

    /// Sends the `finish_reason` chunk once.
    fn finish_chunk(&mut self, stop_reason: Option<&str>, out: &mut Vec<u8>) {
        if !self.finish_sent {
            self.start(out);
            self.finish_sent = true;
            self.chunk(json!({}), Some(finish_reason(stop_reason)), out);
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            // OpenAI: with include_usage, every other chunk has `usage: null`.
            chunk["usage"] = Value::Null;
        }
        emit(out, &chunk);
    }
}

fn emit(out: &mut Vec<u8>, value: &Value) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(value.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translate(request: Value) -> Value {
        chat_to_messages(&request, "claude-up", 1024).expect("translatable")
    }

    fn refused(request: Value) -> String {
        chat_to_messages(&request, "claude-up", 1024)
            .expect_err("untranslatable")
            .0
    }

    // --- requests -----------------------------------------------------------

    #[test]
    fn basic_request_uses_upstream_model_and_max_tokens() {
        let body = translate(json!({
            "model": "gpt-caller",
            "max_tokens": 7,
            "max_completion_tokens": 9,
            "messages": [{"role": "user", "content": "Hi"}],
        }));
        assert_eq!(
            body,
            json!({
                "model": "claude-up",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": "Hi"}],
            })
        );
    }

    #[test]
    fn system_and_developer_messages_join_into_system() {
        let body = translate(json!({"messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}, {"type": "text", "text": "No emoji."}]},
            {"role": "assistant", "content": "Salut"},
            {"role": "system", "content": ""},
        ]}));
        assert_eq!(body["system"], "Be brief.\n\nUse French.\n\nNo emoji.");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Salut"},
            ])
        );
        let no_system = translate(json!({"messages": [{"role": "user", "content": "Hi"}]}));
        assert!(no_system.get("system").is_none());
        let err = refused(json!({"messages": [
            {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]},
            {"role": "user", "content": "Hi"},
        ]}));
        assert!(err.contains("image_url"), "{err}");
    }

    #[test]
    fn content_parts_map_to_blocks() {
        let body = translate(json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "compare"},
            {"type": "image_url", "image_url": {"url": "https://x/a.png", "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,BBBB"}},
        ]}]}));
        assert_eq!(
            body["messages"][0]["content"],
            json!([
                {"type": "text", "text": "compare"},
                {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "BBBB"}},
            ])
        );
    }

    #[test]
    fn unsupported_parts_and_images_are_refused_by_name() {
        for (part, needle) in [
            (
                json!({"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}),
                "input_audio",
            ),
            (json!({"type": "file", "file": {"file_id": "f"}}), "file"),
            (
                json!({"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA"}}),
                "image/tiff",
            ),
            (
                json!({"type": "image_url", "image_url": {"url": "data:image/png,AA"}}),
                "base64",
            ),
            (
                json!({"type": "image_url", "image_url": {"url": "ftp://x/a.png"}}),
                "http",
            ),
            (json!({"type": "image_url", "image_url": {}}), "url"),
            (json!({"type": "text"}), "text"),
            (json!({"text": "no type"}), "type"),
            (json!(5), "type"),
        ] {
            let err = refused(json!({"messages": [{"role": "user", "content": [part]}]}));
            assert!(err.contains(needle), "{needle}: {err}");
        }
        // Refusal parts are fine from the assistant, not from the user.
        let body = translate(json!({"messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't."}]},
        ]}));
        assert_eq!(
            body["messages"][1]["content"],
            json!([{"type": "text", "text": "I can't."}])
        );
        let err = refused(
            json!({"messages": [{"role": "user", "content": [{"type": "refusal", "refusal": "x"}]}]}),
        );
        assert!(err.contains("refusal"), "{err}");
    }

    #[test]
    fn assistant_tool_calls_become_tool_use_blocks_after_text() {
        let body = translate(json!({"messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "2"}, {"type": "text", "text": "1C"}]},
            {"role": "user", "content": "Thanks, and?"},
        ]}));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": "21C"},
                    {"type": "text", "text": "Thanks, and?"},
                ]},
            ])
        );
    }

    #[test]
    fn tool_call_edge_cases() {
        // null content, empty arguments.
        let body = translate(json!({"messages": [
            {"role": "user", "content": "now?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "clock", "arguments": ""}},
            ]},
            {"role": "tool", "tool_call_id": "c", "content": "noon"},
        ]}));
        assert_eq!(
            body["messages"][1]["content"],
            json!([{"type": "tool_use", "id": "c", "name": "clock", "input": {}}])
        );
        let call = |arguments: Value| {
            refused(json!({"messages": [
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}]},
            ]}))
        };
        assert!(call(json!("{not json")).contains("not valid JSON"));
        assert!(call(json!("[1,2]")).contains("object"));
        assert!(call(json!(42)).contains("string"));
        let err = refused(json!({"messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "f"}}]},
        ]}));
        assert!(err.contains("custom"), "{err}");
        let err = refused(json!({"messages": [{"role": "tool", "content": "x"}]}));
        assert!(err.contains("tool_call_id"), "{err}");
    }

    #[test]
    fn same_role_messages_merge_and_empty_assistant_turns_drop() {
        let body = translate(json!({"messages": [
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "three"},
            {"role": "assistant", "content": "a"},
            {"role": "assistant", "content": "b"},
        ]}));
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "one"},
                    {"type": "text", "text": "two"},
                    {"type": "text", "text": "three"},
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "a"},
                    {"type": "text", "text": "b"},
                ]},
            ])
        );
    }

    #[test]
    fn tool_results_go_first_in_a_merged_user_turn() {
        let body = translate(json!({"messages": [
            {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "user", "content": "before"},
            {"role": "tool", "tool_call_id": "c", "content": "r"},
        ]}));
        assert_eq!(
            body["messages"][1]["content"],
            json!([
                {"type": "tool_result", "tool_use_id": "c", "content": "r"},
                {"type": "text", "text": "before"},
            ])
        );
    }

    #[test]
    fn tools_and_tool_choice_map() {
        let tools = json!([
            {"type": "function", "function": {"name": "weather", "description": "Weather by city", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": true}},
            {"type": "function", "function": {"name": "clock"}},
        ]);
        let with = |choice: Value, parallel: Value| {
            translate(json!({
                "messages": [{"role": "user", "content": "x"}],
                "tools": tools,
                "tool_choice": choice,
                "parallel_tool_calls": parallel,
            }))
        };
        let body = with(Value::Null, Value::Null);
        assert_eq!(
            body["tools"],
            json!([
                {"name": "weather", "description": "Weather by city", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "clock", "input_schema": {"type": "object", "properties": {}}},
            ])
        );
        assert!(body.get("tool_choice").is_none());
        assert_eq!(
            with(json!("auto"), Value::Null)["tool_choice"],
            json!({"type": "auto"})
        );
        assert_eq!(
            with(json!("required"), Value::Null)["tool_choice"],
            json!({"type": "any"})
        );
        assert_eq!(
            with(json!("none"), Value::Null)["tool_choice"],
            json!({"type": "none"})
        );
        assert_eq!(
            with(
                json!({"type": "function", "function": {"name": "clock"}}),
                Value::Null
            )["tool_choice"],
            json!({"type": "tool", "name": "clock"})
        );
        assert_eq!(
            with(
                json!({"type": "function", "function": {"name": "clock"}}),
                json!(false)
            )["tool_choice"],
            json!({"type": "tool", "name": "clock", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            with(Value::Null, json!(false))["tool_choice"],
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            with(json!("required"), json!(true))["tool_choice"],
            json!({"type": "any"})
        );
        assert_eq!(
            with(json!("none"), json!(false))["tool_choice"],
            json!({"type": "none"})
        );
        // Without tools there is nothing to choose.
        let body = translate(json!({
            "messages": [{"role": "user", "content": "x"}],
            "tools": [],
            "tool_choice": "auto",
            "parallel_tool_calls": false,
        }));
        assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
        // Refusals.
        let bad = |extra: Value| {
            let mut request =
                json!({"messages": [{"role": "user", "content": "x"}], "tools": tools});
            for (k, v) in extra.as_object().unwrap() {
                request[k] = v.clone();
            }
            refused(request)
        };
        assert!(bad(json!({"tool_choice": "sometimes"})).contains("sometimes"));
        assert!(bad(json!({"tool_choice": {"type": "allowed_tools"}})).contains("allowed_tools"));
        assert!(bad(json!({"tool_choice": {"type": "function"}})).contains("name"));
        assert!(
            bad(json!({"tools": [{"type": "custom", "custom": {"name": "x"}}]})).contains("custom")
        );
        assert!(bad(json!({"tools": [{"type": "function", "function": {}}]})).contains("name"));
        assert!(bad(
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]})
        )
        .contains("parameters"));
        assert!(bad(json!({"tools": {"a": 1}})).contains("array"));
    }

    #[test]
    fn sampling_fields_map_and_openai_only_fields_drop() {
        let body = translate(json!({
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 1.7,
            "top_p": 0.9,
            "stop": "END",
            "stream": true,
            "user": "u-42",
            "n": 1,
            "frequency_penalty": 0.5,
            "presence_penalty": 0.5,
            "logprobs": true,
            "top_logprobs": 3,
            "seed": 7,
            "stream_options": {"include_usage": true},
            "metadata": {"k": "v"},
            "store": true,
            "service_tier": "auto",
            "reasoning_effort": "low",
            "logit_bias": {"1": 2},
            "response_format": {"type": "text"},
            "modalities": ["text"],
        }));
        assert_eq!(
            body,
            json!({
                "model": "claude-up",
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": "x"}],
                "temperature": 1.0,
                "top_p": 0.9,
                "stop_sequences": ["END"],
                "stream": true,
                "metadata": {"user_id": "u-42"},
            })
        );
        let body = translate(json!({
            "messages": [{"role": "user", "content": "x"}],
            "temperature": -3,
            "stop": ["a", "b"],
            "stream": false,
        }));
        assert_eq!(body["temperature"], json!(0.0));
        assert_eq!(body["stop_sequences"], json!(["a", "b"]));
        assert_eq!(body["stream"], json!(false));
        let body = translate(
            json!({"messages": [{"role": "user", "content": "x"}], "temperature": 0.3, "stop": [], "user": ""}),
        );
        assert_eq!(body["temperature"], json!(0.3));
        assert!(body.get("stop_sequences").is_none() && body.get("metadata").is_none());
    }

    #[test]
    fn requests_anthropic_cannot_serve_are_refused() {
        let with = |k: &str, v: Value| {
            let mut request = json!({"messages": [{"role": "user", "content": "x"}]});
            request[k] = v;
            refused(request)
        };
        assert!(with("n", json!(2)).contains("one choice"));
        assert!(with("n", json!("2")).contains("`n`"));
        assert!(with("response_format", json!({"type": "json_object"})).contains("json_object"));
        assert!(with(
            "response_format",
            json!({"type": "json_schema", "json_schema": {"name": "x", "schema": {}}})
        )
        .contains("json_schema"));
        assert!(with("response_format", json!("json")).contains("response_format"));
        assert!(with("modalities", json!(["text", "audio"])).contains("text"));
        assert!(with("audio", json!({"voice": "alloy"})).contains("audio"));
        assert!(with("functions", json!([{"name": "f"}])).contains("tools"));
        assert!(with("temperature", json!("hot")).contains("temperature"));
        assert!(with("top_p", json!([])).contains("top_p"));
        assert!(with("stop", json!([1])).contains("stop"));
        assert!(with("stop", json!(3)).contains("stop"));
        assert!(
            refused(json!({"messages": [{"role": "function", "name": "f", "content": "x"}]}))
                .contains("function")
        );
        assert!(
            refused(json!({"messages": [{"role": "robot", "content": "x"}]})).contains("robot")
        );
        assert!(
            refused(json!({"messages": [{"role": "system", "content": "only"}]}))
                .contains("At least one")
        );
        assert!(refused(json!({"messages": []})).contains("At least one"));
    }

    #[test]
    fn hostile_shapes_never_panic() {
        for request in [
            json!(null),
            json!([]),
            json!("messages"),
            json!({}),
            json!({"messages": null}),
            json!({"messages": {"role": "user"}}),
            json!({"messages": "hi"}),
            json!({"messages": [1, 2]}),
            json!({"messages": [null]}),
            json!({"messages": [{}]}),
            json!({"messages": [{"role": 5, "content": "x"}]}),
            json!({"messages": [{"role": "user"}]}),
            json!({"messages": [{"role": "user", "content": 5}]}),
            json!({"messages": [{"role": "user", "content": {"type": "text"}}]}),
            json!({"messages": [{"role": "user", "content": [[]]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": 7}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": 9}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:"}}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]}),
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "dätä:x"}}]}]}),
            json!({"messages": [{"role": "system", "content": 3.5}]}),
            json!({"messages": [{"role": "assistant", "content": true}]}),
            json!({"messages": [{"role": "assistant", "tool_calls": "x"}]}),
            json!({"messages": [{"role": "assistant", "tool_calls": [null]}]}),
            json!({"messages": [{"role": "assistant", "tool_calls": [{"function": "x"}]}]}),
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": 1, "function": {"name": "f"}}]}]}),
            json!({"messages": [{"role": "tool", "tool_call_id": ["x"], "content": "r"}]}),
            json!({"messages": [{"role": "tool", "tool_call_id": "x", "content": {"a": 1}}]}),
            json!({"messages": [{"role": "user", "content": "x"}], "tools": [null]}),
            json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f", "description": 5}}]}),
            json!({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": 5}),
            json!({"messages": [{"role": "user", "content": "x"}], "n": 1e300}),
            json!({"messages": [{"role": "user", "content": "x"}], "n": -1}),
            json!({"messages": [{"role": "user", "content": "x"}], "temperature": 1e308}),
            json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": 5}}),
            json!({"messages": [{"role": "user", "content": "x"}], "modalities": "audio"}),
            json!({"messages": [{"role": "user", "content": "x"}], "user": 12, "stream": "yes"}),
        ] {
            // Either answer is fine; neither may panic, and what is accepted
            // must still be a Messages body.
            if let Ok(body) = chat_to_messages(&request, "m", 1) {
                assert!(body["messages"].is_array(), "{request}");
            }
        }
        assert!(refused(json!({"messages": [{"role": "user", "content": 5}]})).contains("content"));
        assert!(refused(json!({"messages": {"role": "user"}})).contains("messages"));
        assert!(refused(json!([])).contains("object"));
    }

    // --- responses ----------------------------------------------------------

    fn anthropic_response() -> Value {
        json!({
            "id": "msg_01ABC",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Let me check "},
                {"type": "text", "text": "the weather."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 100, "output_tokens": 30, "cache_creation_input_tokens": 20, "cache_read_input_tokens": 5},
        })
    }

    #[test]
    fn message_to_chat_maps_text_tools_usage() {
        let chat = message_to_chat(&anthropic_response(), "caller-model");
        assert_eq!(chat["id"], "chatcmpl-msg_01ABC");
        assert_eq!(chat["object"], "chat.completion");
        assert_eq!(chat["model"], "caller-model");
        assert!(chat["created"].as_u64().unwrap() > 1_600_000_000);
        assert_eq!(
            chat["choices"],
            json!([{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check the weather.",
                    "refusal": null,
                    "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}],
                },
                "logprobs": null,
                "finish_reason": "tool_calls",
            }])
        );
        assert_eq!(
            chat["usage"],
            json!({"prompt_tokens": 125, "completion_tokens": 30, "total_tokens": 155, "prompt_tokens_details": {"cached_tokens": 5}})
        );
    }

    #[test]
    fn message_to_chat_finish_reasons_and_empty_content() {
        for (stop, finish) in [
            (json!("end_turn"), "stop"),
            (json!("stop_sequence"), "stop"),
            (json!("max_tokens"), "length"),
            (json!("tool_use"), "tool_calls"),
            (json!("refusal"), "content_filter"),
            (json!("pause_turn"), "stop"),
            (json!("model_context_window_exceeded"), "length"),
            (json!("something_new"), "stop"),
            (Value::Null, "stop"),
            (json!(3), "stop"),
        ] {
            let chat =
                message_to_chat(&json!({"id": "m", "content": [], "stop_reason": stop}), "x");
            assert_eq!(chat["choices"][0]["finish_reason"], finish, "{stop}");
            assert_eq!(chat["choices"][0]["message"]["content"], Value::Null);
            assert!(chat["choices"][0]["message"].get("tool_calls").is_none());
            assert!(chat.get("usage").is_none());
        }
    }

    #[test]
    fn message_to_chat_survives_hostile_responses() {
        for response in [
            json!(null),
            json!([]),
            json!("x"),
            json!({"content": "text"}),
            json!({"content": [null, 1, {"type": "text", "text": 5}, {"type": "tool_use"}]}),
            json!({"id": 5, "usage": {"input_tokens": "1"}}),
            json!({"usage": {"input_tokens": 9_223_372_036_854_775_807_i64, "output_tokens": 9_223_372_036_854_775_807_i64, "cache_read_input_tokens": 5}}),
        ] {
            let chat = message_to_chat(&response, "x");
            assert_eq!(chat["object"], "chat.completion");
            assert_eq!(chat["choices"][0]["message"]["role"], "assistant");
        }
        let chat = message_to_chat(&json!({"content": [{"type": "tool_use"}]}), "x");
        assert_eq!(
            chat["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
    }

    #[test]
    fn usage_of_message_counts_cache_tokens() {
        assert_eq!(usage_of_message(&anthropic_response()), Some((125, 30)));
        assert_eq!(
            usage_of_message(
                &json!({"usage": {"input_tokens": 10, "output_tokens": 2, "cache_creation_input_tokens": null, "cache_read_input_tokens": null}})
            ),
            Some((10, 2))
        );
        assert_eq!(
            usage_of_message(&json!({"usage": {"input_tokens": 10}})),
            None
        );
        assert_eq!(usage_of_message(&json!({})), None);
        assert_eq!(usage_of_message(&json!(null)), None);
        assert_eq!(
            usage_of_message(&json!({"usage": {"input_tokens": -5, "output_tokens": 1}})),
            Some((0, 1))
        );
    }

    #[test]
    fn round_trip_keeps_tool_calls_and_text() {
        // Anthropic answers; the caller sends the answer back with a tool
        // result; the assistant turn Anthropic sees is its own answer.
        let chat = message_to_chat(&anthropic_response(), "caller-model");
        let assistant = chat["choices"][0]["message"].clone();
        let tool_call_id = assistant["tool_calls"][0]["id"].clone();
        let body = translate(json!({"messages": [
            {"role": "user", "content": "Weather in Paris?"},
            assistant,
            {"role": "tool", "tool_call_id": tool_call_id, "content": "18C"},
        ]}));
        let mut expected: Vec<Value> =
            anthropic_response()["content"].as_array().unwrap()[1..].to_vec();
        expected[0]["text"] = json!("Let me check the weather.");
        expected.remove(1);
        assert_eq!(
            body["messages"][1],
            json!({"role": "assistant", "content": expected})
        );
        assert_eq!(
            body["messages"][2],
            json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]})
        );
    }

    // --- errors ---------------------------------------------------------------

    #[test]
    fn errors_become_openai_errors() {
        let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#;
        let v: Value = serde_json::from_slice(&error_to_openai(body)).unwrap();
        assert_eq!(
            v,
            json!({"error": {"message": "Overloaded", "type": "server_error", "code": "overloaded_error", "param": null}})
        );
        let body = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too big"}}"#;
        let v: Value = serde_json::from_slice(&error_to_openai(body)).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["message"], "max_tokens: too big");
        let v: Value = serde_json::from_slice(&error_to_openai(
            br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
        ))
        .unwrap();
        assert_eq!(v["error"]["type"], "rate_limit_error");
        for raw in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"\xff\xfe",
            b"[]",
            b"{\"error\": 5}",
            b"null",
        ] {
            let v: Value = serde_json::from_slice(&error_to_openai(raw)).unwrap();
            assert!(v["error"]["message"].is_string(), "{v}");
            assert_eq!(v["error"]["type"], "upstream_error");
            assert!(v["error"]["param"].is_null());
        }
        let v: Value =
            serde_json::from_slice(&error_to_openai(b"<html>502 Bad Gateway</html>")).unwrap();
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("502 Bad Gateway"));
        let long = "é".repeat(2000);
        let v: Value = serde_json::from_slice(&error_to_openai(long.as_bytes())).unwrap();
        assert!(v["error"]["message"].as_str().unwrap().len() < 1100);
    }

    // --- streams --------------------------------------------------------------

    fn sse(events: &[(&str, Value)]) -> String {
        events
            .iter()
            .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
            .collect()
    }

    fn text_stream() -> String {
        sse(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 40}}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            ("ping", json!({"type": "ping"})),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Héllo"}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " wörld ✓"}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 15}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ])
    }

    fn tool_stream() -> String {
        sse(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_2", "content": [], "usage": {"input_tokens": 50, "output_tokens": 1}}}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "mull"}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Okay."}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 2}),
            ),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "clock", "input": {}}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": ""}}),
            ),
            (
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 3}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 42}}),
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ])
    }

    /// The `data:` payloads of OpenAI SSE bytes, JSON-parsed (`[DONE]` as a string).
    fn payloads(bytes: &[u8]) -> Vec<Value> {
        let text = std::str::from_utf8(bytes).unwrap();
        assert!(text.is_empty() || text.ends_with("\n\n"), "{text:?}");
        text.split("\n\n")
            .filter(|e| !e.is_empty())
            .map(|e| {
                let data = e.strip_prefix("data: ").expect("data event");
                if data == "[DONE]" {
                    json!("[DONE]")
                } else {
                    serde_json::from_str(data).unwrap()
                }
            })
            .collect()
    }

    fn run_whole(input: &[u8], include_usage: bool) -> (Vec<u8>, StreamTranslator) {
        let mut t = StreamTranslator::new("caller-model", include_usage);
        let mut out = t.feed(input).to_vec();
        out.extend_from_slice(&t.finish());
        (out, t)
    }

    fn run_bytewise(input: &[u8], include_usage: bool) -> (Vec<u8>, StreamTranslator) {
        let mut t = StreamTranslator::new("caller-model", include_usage);
        let mut out = Vec::new();
        for b in input {
            out.extend_from_slice(&t.feed(std::slice::from_ref(b)));
        }
        out.extend_from_slice(&t.finish());
        (out, t)
    }

    /// Outputs of two translators differ only in `created` if a second
    /// boundary passed between them (and the id when no message_start).
    fn normalized(bytes: &[u8]) -> Vec<Value> {
        payloads(bytes)
            .into_iter()
            .map(|mut v| {
                if v.get("created").is_some() {
                    v["created"] = json!(0);
                }
                v
            })
            .collect()
    }

    #[test]
    fn text_stream_translates() {
        let (out, t) = run_whole(text_stream().as_bytes(), false);
        let events = payloads(&out);
        assert_eq!(events.len(), 5, "{events:?}");
        for e in &events[..4] {
            assert_eq!(e["id"], "chatcmpl-msg_1");
            assert_eq!(e["object"], "chat.completion.chunk");
            assert_eq!(e["model"], "caller-model");
            assert_eq!(e["created"], events[0]["created"]);
            assert!(e.get("usage").is_none());
        }
        let choice = |i: usize| events[i]["choices"][0].clone();
        assert_eq!(
            choice(0),
            json!({"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": null, "finish_reason": null})
        );
        assert_eq!(choice(1)["delta"], json!({"content": "Héllo"}));
        assert_eq!(choice(2)["delta"], json!({"content": " wörld ✓"}));
        assert_eq!(
            choice(3),
            json!({"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"})
        );
        assert_eq!(events[4], json!("[DONE]"));
        assert_eq!(t.usage(), Some((75, 15)));
        assert!(t.usage_complete());
        assert!(!t.failed());
        assert_eq!(t.output_bytes(), ("Héllo".len() + " wörld ✓".len()) as u64);
    }

    #[test]
    fn include_usage_adds_the_usage_chunk_and_null_usage_elsewhere() {
        let (out, _) = run_whole(text_stream().as_bytes(), true);
        let events = payloads(&out);
        assert_eq!(events.len(), 6);
        for e in &events[..4] {
            assert_eq!(e.get("usage"), Some(&Value::Null));
        }
        assert_eq!(
            events[4],
            json!({
                "id": "chatcmpl-msg_1",
                "object": "chat.completion.chunk",
                "created": events[0]["created"],
                "model": "caller-model",
                "choices": [],
                "usage": {"prompt_tokens": 75, "completion_tokens": 15, "total_tokens": 90, "prompt_tokens_details": {"cached_tokens": 40}},
            })
        );
        assert_eq!(events[5], json!("[DONE]"));
        assert!(out.ends_with(b"data: [DONE]\n\n"));
    }

    #[test]
    fn tool_stream_translates() {
        let (out, t) = run_whole(tool_stream().as_bytes(), false);
        let deltas: Vec<Value> = payloads(&out)
            .iter()
            .filter(|e| e.is_object())
            .map(|e| e["choices"][0]["delta"].clone())
            .collect();
        assert_eq!(
            deltas,
            vec![
                json!({"role": "assistant", "content": ""}),
                json!({"content": "Okay."}),
                json!({"tool_calls": [{"index": 0, "id": "toolu_a", "type": "function", "function": {"name": "weather", "arguments": ""}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": "}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris\"}"}}]}),
                json!({"tool_calls": [{"index": 1, "id": "toolu_b", "type": "function", "function": {"name": "clock", "arguments": ""}}]}),
                json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
                json!({}),
            ]
        );
        let events = payloads(&out);
        assert_eq!(
            events[events.len() - 2]["choices"][0]["finish_reason"],
            "tool_calls"
        );
        assert_eq!(events.last().unwrap(), &json!("[DONE]"));
        assert_eq!(t.usage(), Some((50, 42)));
        // Thinking counts as output; tool JSON and text too.
        assert_eq!(
            t.output_bytes(),
            ("mull".len() + "Okay.".len() + "{\"city\": ".len() + "\"Paris\"}".len()) as u64
        );
    }

    #[test]
    fn byte_at_a_time_equals_whole_feed() {
        for stream in [text_stream(), tool_stream()] {
            for include_usage in [false, true] {
                let (whole, a) = run_whole(stream.as_bytes(), include_usage);
                let (bytewise, b) = run_bytewise(stream.as_bytes(), include_usage);
                assert_eq!(normalized(&whole), normalized(&bytewise));
                assert_eq!(a.usage(), b.usage());
                assert_eq!(a.output_bytes(), b.output_bytes());
                // Arbitrary splits too.
                for split in [1, 7, 64, 333] {
                    let mut t = StreamTranslator::new("caller-model", include_usage);
                    let mut out = Vec::new();
                    for piece in stream.as_bytes().chunks(split) {
                        out.extend_from_slice(&t.feed(piece));
                    }
                    out.extend_from_slice(&t.finish());
                    assert_eq!(normalized(&whole), normalized(&out));
                }
            }
        }
    }

    #[test]
    fn crlf_and_cr_line_endings_are_accepted() {
        let (lf, _) = run_whole(tool_stream().as_bytes(), true);
        let crlf = tool_stream().replace('\n', "\r\n");
        let (whole, _) = run_whole(crlf.as_bytes(), true);
        let (bytewise, _) = run_bytewise(crlf.as_bytes(), true);
        assert_eq!(normalized(&lf), normalized(&whole));
        assert_eq!(normalized(&lf), normalized(&bytewise));
        let cr = tool_stream().replace('\n', "\r");
        let (bytewise, _) = run_bytewise(cr.as_bytes(), true);
        assert_eq!(normalized(&lf), normalized(&bytewise));
    }

    #[test]
    fn sse_framing_details() {
        // No `event:` lines, comments, `data:` without a space, multi-line
        // data, unknown fields and unknown events.
        let input = ": keep-alive\n\
            id: 1\n\
            data:{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n\
            event: mystery\ndata: {\"type\":\"mystery\",\"x\":1}\n\n\
            data: {\"type\":\"content_block_delta\",\"index\":0,\n\
            data: \"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n\
            data: not json\n\n\
            event: ping\ndata: {\"type\": \"ping\"}\n\n\
            data: {\"type\":\"message_stop\"}";
        let (out, t) = run_whole(input.as_bytes(), true);
        let events = payloads(&out);
        let deltas: Vec<&Value> = events.iter().map(|e| &e["choices"][0]["delta"]).collect();
        assert_eq!(deltas[1], &json!({"content": "hi"}));
        // message_stop without a blank line still finishes (in finish()).
        assert_eq!(events[2]["choices"][0]["finish_reason"], "stop");
        assert_eq!(events[3]["usage"]["prompt_tokens"], 3);
        assert_eq!(events.last().unwrap(), &json!("[DONE]"));
        // No message_delta: usage known but not complete.
        assert_eq!(t.usage(), Some((3, 0)));
        assert!(!t.usage_complete());
    }

    #[test]
    fn done_only_after_message_stop() {
        let stream = text_stream();
        let cut = stream.find("event: message_delta").unwrap();
        let (out, t) = run_whole(&stream.as_bytes()[..cut], true);
        assert!(!out.windows(6).any(|w| w == b"[DONE]"));
        assert_eq!(t.usage(), Some((75, 1)));
        assert!(!t.usage_complete());
        // Half an event at the end is dropped, not half-translated.
        let cut = stream.find("\"text\":\" w").unwrap();
        let (out, _) = run_whole(&stream.as_bytes()[..cut], false);
        assert_eq!(payloads(&out).len(), 2);
        // [DONE] is sent by feed at message_stop; finish adds nothing more.
        let mut t = StreamTranslator::new("m", false);
        let out = t.feed(stream.as_bytes());
        assert!(out.ends_with(b"data: [DONE]\n\n"));
        assert!(t.finish().is_empty());
        // Events after message_stop are ignored.
        let more = sse(&[(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "late"}}),
        )]);
        assert!(t.feed(more.as_bytes()).is_empty());
    }

    #[test]
    fn usage_is_none_before_message_start() {
        let mut t = StreamTranslator::new("m", true);
        assert_eq!(t.usage(), None);
        assert!(!t.usage_complete());
        let out = t.feed(b"event: ping\ndata: {\"type\": \"ping\"}\n\n");
        assert!(out.is_empty());
        assert_eq!(t.usage(), None);
        // message_start without usage leaves it unknown.
        t.feed(b"data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n");
        assert_eq!(t.usage(), None);
        // message_stop without known usage sends no usage chunk.
        let out = t.feed(b"data: {\"type\":\"message_stop\"}\n\n");
        let events = payloads(&out);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn message_delta_cumulative_input_counts() {
        let input = sse(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 10, "output_tokens": 1, "cache_read_input_tokens": 100}}}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": null}, "usage": {"output_tokens": 5}}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"input_tokens": 300, "cache_read_input_tokens": 100, "output_tokens": 9}}),
            ),
        ]);
        let (out, t) = run_whole(input.as_bytes(), false);
        assert_eq!(t.usage(), Some((400, 9)));
        assert!(t.usage_complete());
        let finishes: Vec<Value> = payloads(&out)
            .iter()
            .map(|e| e["choices"][0]["finish_reason"].clone())
            .filter(|f| !f.is_null())
            .collect();
        assert_eq!(finishes, vec![json!("stop")]);
        // A smaller input in message_delta never lowers the count.
        let input = sse(&[
            (
                "message_start",
                json!({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 10, "output_tokens": 1, "cache_creation_input_tokens": 5}}}),
            ),
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {}, "usage": {"input_tokens": 0, "output_tokens": 3}}),
            ),
        ]);
        let (_, t) = run_whole(input.as_bytes(), false);
        assert_eq!(t.usage(), Some((15, 3)));
    }

    #[test]
    fn error_event_marks_failed_and_emits_openai_error() {
        let stream = text_stream();
        let cut = stream.find("event: content_block_stop").unwrap();
        let mut input = stream[..cut].to_owned();
        input.push_str("event: error\ndata: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n");
        input.push_str(&stream[cut..]);
        let (out, t) = run_whole(input.as_bytes(), true);
        assert!(t.failed());
        let events = payloads(&out);
        assert_eq!(
            events.last().unwrap(),
            &json!({"error": {"message": "Overloaded", "type": "server_error", "code": "overloaded_error", "param": null}})
        );
        assert!(!out.windows(6).any(|w| w == b"[DONE]"));
        let (bytewise, _) = run_bytewise(input.as_bytes(), true);
        assert_eq!(normalized(&out), normalized(&bytewise));
        // An error event whose data is not JSON still reports.
        let mut t = StreamTranslator::new("m", false);
        let out = t.feed(b"event: error\ndata: upstream exploded\n\n");
        assert!(t.failed());
        assert!(payloads(&out)[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream exploded"));
    }

    #[test]
    fn hostile_streams_never_panic() {
        let inputs: Vec<Vec<u8>> = vec![
            b"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n".to_vec(),
            b"data: {\"type\":\"content_block_start\",\"index\":-1,\"content_block\":{\"type\":\"tool_use\"}}\n\ndata: {\"type\":\"content_block_stop\",\"index\":-1}\n\n".to_vec(),
            b"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":5}\n\n".to_vec(),
            b"data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":\"many\"},\"delta\":7}\n\n".to_vec(),
            b"data: {\"type\":\"message_start\",\"message\":[]}\n\n".to_vec(),
            b"data: {\"type\":5}\n\ndata: []\n\ndata: null\n\ndata: \"message_stop\"\n\n".to_vec(),
            b"\xff\xfe\xfd\n\n\r\r\n\ndata: \xff\n\n".to_vec(),
            b"event: message_stop\ndata: {}\n\n".to_vec(),
            vec![b'a'; 10_000],
            b":\n:\n\n\n\n".to_vec(),
            b"data".to_vec(),
        ];
        // Without message_start each translator makes up its own id.
        let same_id = |bytes: &[u8]| -> Vec<Value> {
            normalized(bytes)
                .into_iter()
                .map(|mut v| {
                    if v.get("id").is_some() {
                        v["id"] = json!("chatcmpl-x");
                    }
                    v
                })
                .collect()
        };
        for input in inputs {
            let (whole, _) = run_whole(&input, true);
            let (bytewise, _) = run_bytewise(&input, true);
            assert_eq!(same_id(&whole), same_id(&bytewise));
        }
        // The id of a stream without message_start is still shared by all chunks.
        let (out, _) = run_whole(b"data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\ndata: {\"type\":\"message_stop\"}\n\n", false);
        let events = payloads(&out);
        assert_eq!(events.len(), 4);
        assert!(events[0]["id"].as_str().unwrap().starts_with("chatcmpl-"));
        assert!(events[..3].iter().all(|e| e["id"] == events[0]["id"]));
    }
}
