//! Streaming chat completions: server-sent events pass through as they
//! arrive while the usage in the final chunk is read for the ledger. The
//! gateway always asks the provider for that usage chunk and drops it again
//! when the caller did not ask for it. A stream that ends without usage (the
//! provider broke off, or the caller went away) is charged the worst case,
//! never nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{BoxStream, Stream, StreamExt};
use serde_json::Value;

use super::{usage_of, Context, Gateway, Reply, ReplyBody};
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
    fn complete(self, usage: Option<(i64, i64)>, body: Option<Bytes>, broken: bool) {
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

struct Metered {
    inner: BoxStream<'static, reqwest::Result<Bytes>>,
    pending: BytesMut,
    kept: Option<BytesMut>,
    usage: Option<(i64, i64)>,
    client_wants_usage: bool,
    finisher: Option<Finisher>,
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

impl Metered {
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
            if let Some(usage) = usage_of(&value) {
                self.usage = Some(usage);
                let no_choices = value
                    .get("choices")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
                if !self.client_wants_usage && no_choices {
                    return false;
                }
            }
        }
        true
    }

    fn forward(&mut self, out: &mut BytesMut) {
        while let Some(end) = event_end(&self.pending) {
            let event = self.pending.split_to(end);
            if self.inspect(&event) {
                out.extend_from_slice(&event);
            }
        }
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
            match this.inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.pending.extend_from_slice(&chunk);
                    let mut out = BytesMut::new();
                    this.forward(&mut out);
                    if !out.is_empty() {
                        if let Some(kept) = &mut this.kept {
                            kept.extend_from_slice(&out);
                        }
                        return Poll::Ready(Some(Ok(out.freeze())));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "the provider's stream broke off");
                    if let Some(f) = this.finisher.take() {
                        f.complete(this.usage, None, true);
                    }
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "the provider's stream broke off",
                    ))));
                }
                Poll::Ready(None) => {
                    let mut rest = std::mem::take(&mut this.pending);
                    if !rest.is_empty() && !this.inspect(&rest.clone()) {
                        rest.clear();
                    }
                    if let Some(kept) = &mut this.kept {
                        kept.extend_from_slice(&rest);
                    }
                    let body = this.kept.take().map(BytesMut::freeze);
                    if let Some(f) = this.finisher.take() {
                        f.complete(this.usage, body, false);
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
        // The caller went away mid-stream: the provider may still bill, so charge the worst case.
        if let Some(f) = self.finisher.take() {
            let usage = self.usage;
            f.complete(usage, None, false);
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
    client_wants_usage: bool,
    upstream_started: Instant,
) -> Reply {
    let status = response.status().as_u16();
    let content_type = "text/event-stream".to_owned();
    let kept = ctx.idempotency.as_ref().map(|_| BytesMut::new());
    let remaining = gateway
        .budgets
        .ledger
        .remaining(&ctx.key.team, &ctx.key.workspace);
    let stream = Metered {
        inner: response.bytes_stream().boxed(),
        pending: BytesMut::new(),
        kept,
        usage: None,
        client_wants_usage,
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
