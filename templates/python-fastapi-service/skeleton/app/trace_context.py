"""W3C Trace Context (traceparent / tracestate) without OpenTelemetry."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from typing import Mapping

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_PATTERN = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")


@dataclass(frozen=True)
class TraceParent:
    trace_id: str
    span_id: str
    flags: str

    @classmethod
    def parse(cls, value: str | None) -> "TraceParent | None":
        """Parses a traceparent header value; None if it is not valid."""
        m = _PATTERN.match((value or "").strip())
        if not m:
            return None
        version, trace_id, span_id, flags, rest = m.groups()
        if version == "ff" or (version == "00" and rest):
            return None
        if set(trace_id) == {"0"} or set(span_id) == {"0"}:
            return None
        return cls(trace_id, span_id, flags)

    @classmethod
    def new_root(cls) -> "TraceParent":
        return cls(secrets.token_hex(16), secrets.token_hex(8), "01")

    def child(self) -> "TraceParent":
        return replace(self, span_id=secrets.token_hex(8))

    def header_value(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


def fallback(inbound: Mapping[str, str]) -> dict[str, str]:
    """Trace headers for a call made without an OpenTelemetry span: continue the
    caller's trace when the request carried one, else start a new trace."""
    parent = TraceParent.parse(inbound.get(TRACEPARENT))
    out = {TRACEPARENT: (parent.child() if parent else TraceParent.new_root()).header_value()}
    state = inbound.get(TRACESTATE)
    if parent and state:
        out[TRACESTATE] = state
    return out
