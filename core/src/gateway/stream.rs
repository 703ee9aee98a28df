//! Streamed answers: server-sent events pass through as they arrive (or are
//! translated, for an Anthropic deployment answering OpenAI's API) while the
//! usage is read for the ledger — OpenAI's final usage chunk (which the
//! gateway always asks for and drops again when the caller did not),
//! the Responses API's `response.completed`, Anthropic's `message_start` and
//! `message_delta`.
//!
//! What a stream costs when the usage is missing:
//! - it ended cleanly without usage: the prompt's bound plus the output
//!   counted as it passed (every token is at least one byte, so bytes bound
//!   the tokens), never more than the hold;
//! - it broke off: the worst case, since the provider may still bill;
//! - the caller went away: the gateway keeps reading the provider's stream
//!   to its end (within the request timeout) and charges the usage it
//!   reports, so what the provider produced is what is charged.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use serde_json::Value;

use super::anthropic::StreamTranslator;
use super::{anthropic_usage, usage_of, Context, Gateway, Reply, ReplyBody, Shape};
use crate::budgets::ledger::{Hold, StoredResponse};
use crate::budgets::money::Price;

struct Finisher {
    gateway: Arc<Gateway>,
    ctx: Context,
    hold: Hold,
    price: Price,
    worst: (i64, i64),
    upstream_started: Instant,
    status: u16,
    content_type: String,
}

impl Finisher {
    /// Settles the hold: the usage when the stream reported it, else the
    /// prompt's bound and the counted output (clean end), else the worst case.
    fn complete(mut self, meter: &Meter, body: Option<Bytes>, broken: bool) {
        if let Some(text) = &meter.seen {
            let ctx = &mut self.ctx;
            if ctx.team.settings.guardrail_response != super::settings::GuardAction::Off {
                // What has streamed cannot be taken back: findings are reported.
                let found = super::guardrails::scan(text, &ctx.team.detectors);
                if !found.is_empty() {
                    self.gateway.note_guardrails(
                        ctx,
                        "response",
                        super::settings::GuardAction::Report,
                        &found,
                    );
                }
            }
            if ctx.team.settings.log_bodies {
                if let Some(log) = ctx.log.as_mut() {
                    log.response_body = Some(super::settings::mask(text));
                }
            }
        }
        let usage = meter
            .usage()
            .or_else(|| (!broken).then(|| (self.worst.0, meter.output_bytes.min(self.worst.1))));
        let stored = body.map(|body| StoredResponse {
            status: self.status,
            content_type: self.content_type.clone(),
            body,
        });
        self.gateway.charge(
            &self.ctx,
            &self.hold,
            self.price,
            usage,
            self.worst,
            if broken { 502 } else { self.status },
            broken.then_some("upstream_5xx"),
            self.upstream_started.elapsed(),
            if broken { None } else { stored },
        );
    }
}

/// Reads the usage (and counts the output) of one stream's events.
struct Meter {
    shape: Shape,
    /// OpenAI's or the Responses API's usage.
    usage: Option<(i64, i64)>,
    /// Anthropic's `message_start` usage, merged with `message_delta`'s.
    anthropic: Option<serde_json::Map<String, Value>>,
    /// Whether Anthropic's `message_delta` carried the output count.
    anthropic_complete: bool,
    /// Bytes of generated text and tool arguments seen.
    output_bytes: i64,
    translator: Option<StreamTranslator>,
    /// What was sent to the caller (up to [`MAX_SEEN`]), for the response
    /// guardrails and the request log.
    seen: Option<String>,
}

/// The most of a stream kept for guardrails and logs.
const MAX_SEEN: usize = 1 << 20;

impl Meter {
    fn keep(&mut self, out: &[u8]) {
        if let Some(seen) = &mut self.seen {
            if seen.len() < MAX_SEEN {
                let room = MAX_SEEN - seen.len();
                let text = String::from_utf8_lossy(&out[..out.len().min(room)]);
                seen.push_str(&text);
            }
        }
    }

    fn new(shape: Shape, model: &str) -> Self {
        let translator = match &shape {
            Shape::AnthropicChat { include_usage } => {
                Some(StreamTranslator::new(model, *include_usage))
            }
            _ => None,
        };
        Self {
            shape,
            usage: None,
            anthropic: None,
            anthropic_complete: false,
            output_bytes: 0,
            translator,
            seen: None,
        }
    }

    fn usage(&self) -> Option<(i64, i64)> {
        match &self.shape {
            Shape::AnthropicChat { .. } => self
                .translator
                .as_ref()
                .filter(|t| t.usage_complete())
                .and_then(StreamTranslator::usage),
            Shape::Anthropic { long_cache } => self
                .anthropic
                .as_ref()
                .filter(|_| self.anthropic_complete)
                .and_then(|u| anthropic_usage(&Value::Object(u.clone()), *long_cache)),
            _ => self.usage,
        }
    }

    /// Takes the provider's bytes; returns what to send the caller.
    fn consume(&mut self, pending: &mut BytesMut, chunk: &[u8]) -> BytesMut {
        let out = self.translate(pending, chunk);
        self.keep(&out);
        out
    }

    fn translate(&mut self, pending: &mut BytesMut, chunk: &[u8]) -> BytesMut {
        if let Some(t) = &mut self.translator {
            let out = t.feed(chunk);
            self.output_bytes = i64::try_from(t.output_bytes()).unwrap_or(i64::MAX);
            return BytesMut::from(&out[..]);
        }
        pending.extend_from_slice(chunk);
        let mut out = BytesMut::new();
        while let Some(end) = event_end(pending) {
            let event = pending.split_to(end);
            if self.inspect(&event) {
                out.extend_from_slice(&event);
            }
        }
        out
    }

    /// What is left when the provider's stream ends.
    fn end(&mut self, pending: &mut BytesMut) -> BytesMut {
        let out = self.end_inner(pending);
        self.keep(&out);
        out
    }

    fn end_inner(&mut self, pending: &mut BytesMut) -> BytesMut {
        if let Some(t) = &mut self.translator {
            let out = t.finish();
            self.output_bytes = i64::try_from(t.output_bytes()).unwrap_or(i64::MAX);
            return BytesMut::from(&out[..]);
        }
        let mut rest = std::mem::take(pending);
        if !rest.is_empty() && !self.inspect(&rest.clone()) {
            rest.clear();
        }
        rest
    }

    /// Inspects one event; returns whether to forward it.
    fn inspect(&mut self, event: &[u8]) -> bool {
        let text = String::from_utf8_lossy(event);
        for line in text.lines() {
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            if !self.read(&value) {
                return false;
            }
        }
        true
    }

    /// Reads one event's JSON; false to drop it (a usage chunk the caller did not ask for).
    fn read(&mut self, value: &Value) -> bool {
        let len = |v: &Value| {
            v.as_str()
                .map_or(0, |s| i64::try_from(s.len()).unwrap_or(0))
        };
        match &self.shape {
            Shape::OpenaiChat { client_wants_usage } => {
                let wants = *client_wants_usage;
                for choice in value["choices"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                {
                    let delta = &choice["delta"];
                    self.output_bytes += len(&delta["content"]) + len(&delta["refusal"]);
                    for call in delta["tool_calls"]
                        .as_array()
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                    {
                        self.output_bytes += len(&call["function"]["arguments"]);
                    }
                }
                if let Some(usage) = usage_of(value) {
                    self.usage = Some(usage);
                    let no_choices = value
                        .get("choices")
                        .and_then(Value::as_array)
                        .is_none_or(Vec::is_empty);
                    if !wants && no_choices {
                        return false;
                    }
                }
            }
            Shape::Responses => match value["type"].as_str().unwrap_or_default() {
                "response.output_text.delta"
                | "response.refusal.delta"
                | "response.function_call_arguments.delta"
                | "response.reasoning_summary_text.delta" => {
                    self.output_bytes += len(&value["delta"]);
                }
                "response.completed" | "response.incomplete" | "response.failed" => {
                    if let Some(usage) = usage_of(&value["response"]) {
                        self.usage = Some(usage);
                    }
                }
                _ => {}
            },
            Shape::Anthropic { .. } => match value["type"].as_str().unwrap_or_default() {
                "message_start" => {
                    if let Some(u) = value["message"]["usage"].as_object() {
                        self.anthropic = Some(u.clone());
                    }
                }
                "content_block_delta" => {
                    let d = &value["delta"];
                    self.output_bytes +=
                        len(&d["text"]) + len(&d["partial_json"]) + len(&d["thinking"]);
                }
                "message_delta" => {
                    if let Some(u) = value["usage"].as_object() {
                        let merged = self.anthropic.get_or_insert_with(Default::default);
                        for (k, v) in u {
                            if !v.is_null() {
                                merged.insert(k.clone(), v.clone());
                            }
                        }
                        self.anthropic_complete = u.contains_key("output_tokens");
                    }
                }
                _ => {}
            },
            Shape::Embeddings | Shape::AnthropicChat { .. } => {}
        }
        true
    }
}

struct Metered {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    pending: BytesMut,
    kept: Option<BytesMut>,
    meter: Option<Meter>,
    finisher: Option<Finisher>,
    /// How long the provider may take to finish after the caller left.
    drain_for: std::time::Duration,
}

/// The end of the first complete event in `buf` (after its blank line).
fn event_end(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finisher.is_none() {
                return Poll::Ready(None);
            }
            let Some(meter) = this.meter.as_mut() else {
                return Poll::Ready(None);
            };
            match this.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    let out = meter.consume(&mut this.pending, &chunk);
                    if !out.is_empty() {
                        if let Some(kept) = &mut this.kept {
                            kept.extend_from_slice(&out);
                        }
                        return Poll::Ready(Some(Ok(out.freeze())));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "the provider's stream broke off");
                    if let (Some(f), Some(meter)) = (this.finisher.take(), this.meter.take()) {
                        f.complete(&meter, None, true);
                    }
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "the provider's stream broke off",
                    ))));
                }
                Poll::Ready(None) => {
                    let rest = meter.end(&mut this.pending);
                    if let Some(kept) = &mut this.kept {
                        kept.extend_from_slice(&rest);
                    }
                    let body = this.kept.take().map(BytesMut::freeze);
                    if let (Some(f), Some(meter)) = (this.finisher.take(), this.meter.take()) {
                        f.complete(&meter, body, false);
                    }
                    return Poll::Ready(if rest.is_empty() {
                        None
                    } else {
                        Some(Ok(rest.freeze()))
                    });
                }
            }
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        // The caller went away mid-stream. The provider may still bill for
        // the whole generation: read its stream to the end and charge the
        // usage it reports (the hold still covers the worst case meanwhile).
        let (Some(finisher), Some(mut meter)) = (self.finisher.take(), self.meter.take()) else {
            return;
        };
        let mut inner = std::mem::replace(&mut self.inner, futures_util::stream::empty().boxed());
        let mut pending = std::mem::take(&mut self.pending);
        let limit = self.drain_for;
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let drained = tokio::time::timeout(limit, async {
                        while let Some(item) = inner.next().await {
                            match item {
                                Ok(chunk) => {
                                    meter.consume(&mut pending, &chunk);
                                }
                                Err(_) => return false,
                            }
                        }
                        meter.end(&mut pending);
                        true
                    })
                    .await
                    .unwrap_or(false);
                    finisher.complete(&meter, None, !drained);
                });
            }
            Err(_) => finisher.complete(&meter, None, true),
        }
    }
}

/// Wraps the provider's event stream; settles the hold when it ends.
#[allow(clippy::too_many_arguments)]
pub(super) fn metered(
    gateway: Arc<Gateway>,
    ctx: Context,
    hold: Hold,
    price: Price,
    worst: (i64, i64),
    response: reqwest::Response,
    shape: Shape,
    upstream_started: Instant,
) -> Reply {
    let status = response.status().as_u16();
    let content_type = "text/event-stream".to_owned();
    let kept = ctx.idempotency.as_ref().map(|_| BytesMut::new());
    let remaining = gateway
        .budgets
        .ledger
        .remaining(&ctx.key.team, &ctx.key.workspace);
    let mut meter = Meter::new(shape, &ctx.target.model);
    let guarded = ctx.team.settings.guardrail_response != super::settings::GuardAction::Off
        && !ctx.team.detectors.is_empty();
    if guarded || (ctx.log.is_some() && ctx.team.settings.log_bodies) {
        meter.seen = Some(String::new());
    }
    let drain_for = gateway.config.llm.timeout;
    let stream = Metered {
        inner: response.bytes_stream().boxed(),
        pending: BytesMut::new(),
        kept,
        meter: Some(meter),
        finisher: Some(Finisher {
            gateway,
            ctx,
            hold,
            price,
            worst,
            upstream_started,
            status,
            content_type: content_type.clone(),
        }),
        drain_for,
    };
    let mut headers = vec![("cache-control", "no-cache".to_owned())];
    if let Some((cents, reset)) = remaining {
        headers.push(("x-paved-budget-remaining-cents", cents.to_string()));
        headers.push(("x-paved-budget-reset", reset));
    }
    Reply {
        status,
        content_type,
        headers,
        body: ReplyBody::Stream(stream.boxed()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(events: &[Value]) -> Vec<u8> {
        events
            .iter()
            .flat_map(|e| format!("data: {e}\n\n").into_bytes())
            .collect()
    }

    #[test]
    fn chat_usage_is_read_and_dropped_when_not_asked_for() {
        let mut m = Meter::new(
            Shape::OpenaiChat {
                client_wants_usage: false,
            },
            "m",
        );
        let mut pending = BytesMut::new();
        let body = sse(&[
            serde_json::json!({"choices": [{"delta": {"content": "Hello"}}]}),
            serde_json::json!({"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}}),
        ]);
        let out = m.consume(&mut pending, &body);
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("Hello"));
        assert!(
            !text.contains("usage"),
            "the usage chunk is dropped: {text}"
        );
        assert_eq!(m.usage(), Some((7, 2)));
        assert_eq!(m.output_bytes, 5);
    }

    #[test]
    fn a_stream_without_usage_counts_its_output() {
        let mut m = Meter::new(Shape::Responses, "m");
        let mut pending = BytesMut::new();
        let body = sse(&[
            serde_json::json!({"type": "response.output_text.delta", "delta": "Hello "}),
            serde_json::json!({"type": "response.output_text.delta", "delta": "there"}),
        ]);
        // Split mid-event: the meter waits for the blank line.
        m.consume(&mut pending, &body[..10]);
        m.consume(&mut pending, &body[10..]);
        assert_eq!(m.usage(), None);
        assert_eq!(m.output_bytes, 11);
        let done = sse(&[
            serde_json::json!({"type": "response.completed", "response": {"usage": {"input_tokens": 9, "output_tokens": 3}}}),
        ]);
        m.consume(&mut pending, &done);
        assert_eq!(m.usage(), Some((9, 3)));
    }

    #[test]
    fn anthropic_usage_needs_the_message_delta() {
        let mut m = Meter::new(Shape::Anthropic { long_cache: false }, "m");
        let mut pending = BytesMut::new();
        let start = sse(&[
            serde_json::json!({"type": "message_start", "message": {"usage": {"input_tokens": 100, "cache_read_input_tokens": 50, "cache_creation_input_tokens": 8, "output_tokens": 1}}}),
        ]);
        m.consume(&mut pending, &start);
        assert_eq!(m.usage(), None, "output is unknown until message_delta");
        let delta = sse(&[
            serde_json::json!({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "abc"}}),
            serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 12}}),
        ]);
        m.consume(&mut pending, &delta);
        // 100 + reads 50/10 = 5 + writes 8 × 1.25 = 10.
        assert_eq!(m.usage(), Some((115, 12)));
        assert_eq!(m.output_bytes, 3);
    }
}
