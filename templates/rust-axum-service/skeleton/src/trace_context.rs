//! W3C Trace Context (`traceparent` / `tracestate`) for outgoing calls.

use axum::http::{HeaderMap, HeaderValue};

/// The `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header name.
pub const TRACESTATE: &str = "tracestate";

/// A parsed `traceparent`: version 00, trace id, parent (span) id, flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub span_id: String,
    /// 2 hex digits (`01` = sampled).
    pub flags: String,
}

impl TraceParent {
    /// Parses a `traceparent` header value; `None` if it is not valid.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let zero = |s: &str| s.bytes().all(|b| b == b'0');
        let valid = hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && hex(trace_id, 32)
            && !zero(trace_id)
            && hex(span_id, 16)
            && !zero(span_id)
            && hex(flags, 2);
        valid.then(|| Self {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            flags: flags.to_owned(),
        })
    }

    /// A new, sampled trace.
    pub fn new_root() -> Self {
        Self {
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            span_id: new_span_id(),
            flags: "01".to_owned(),
        }
    }

    /// The same trace, with a new span id for the outgoing call.
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..self.clone()
        }
    }

    /// The header value.
    pub fn header_value(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

fn new_span_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// Trace context for a call made without an OpenTelemetry span: continue the
/// caller's trace when the request carried one, else start a new trace.
pub fn fallback(inbound: &HeaderMap) -> HeaderMap {
    let parent = inbound
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    let mut out = HeaderMap::new();
    let traceparent = match &parent {
        Some(parent) => parent.child(),
        None => TraceParent::new_root(),
    };
    if let Ok(value) = HeaderValue::from_str(&traceparent.header_value()) {
        out.insert(TRACEPARENT, value);
    }
    if let (Some(_), Some(state)) = (&parent, inbound.get(TRACESTATE)) {
        out.insert(TRACESTATE, state.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_valid_and_rejects_invalid_traceparents() {
        let tp = TraceParent::parse(SAMPLE).unwrap();
        assert_eq!(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.header_value(), SAMPLE);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn fallback_continues_the_callers_trace() {
        let mut inbound = HeaderMap::new();
        inbound.insert(TRACEPARENT, HeaderValue::from_static(SAMPLE));
        inbound.insert(TRACESTATE, HeaderValue::from_static("vendor=abc"));
        let out = fallback(&inbound);
        let tp = TraceParent::parse(out[TRACEPARENT].to_str().unwrap()).unwrap();
        assert_eq!(tp.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(tp.span_id, "00f067aa0ba902b7");
        assert_eq!(out[TRACESTATE], "vendor=abc");
    }

    #[test]
    fn fallback_starts_a_trace_when_there_is_none() {
        let out = fallback(&HeaderMap::new());
        let tp = TraceParent::parse(out[TRACEPARENT].to_str().unwrap()).unwrap();
        assert_eq!(tp.flags, "01");
        assert!(out.get(TRACESTATE).is_none());
    }
}
