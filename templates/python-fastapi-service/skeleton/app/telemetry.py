{%- if values.otel -%}
"""OpenTelemetry tracing.

Spans always get W3C trace ids (so calls to the gateway carry ``traceparent``);
they are exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is
set (e.g. ``http://otel-collector:4318``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from . import trace_context

_PROPAGATOR = TraceContextTextMapPropagator()


class Telemetry:
    """The service's tracer. ``exporter`` is for tests (spans are exported as they end)."""

    def __init__(self, service_name: str, exporter: SpanExporter | None = None) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if exporter is not None:
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
            # Reads the endpoint (adding /v1/traces) and OTEL_EXPORTER_OTLP_HEADERS itself.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("app")

    @contextmanager
    def server_span(
        self, name: str, inbound: Mapping[str, str], attributes: Mapping[str, Any] | None = None
    ) -> Iterator[Span]:
        """A server span continuing the caller's trace (``traceparent`` in ``inbound``)."""
        parent = _PROPAGATOR.extract(carrier=dict(inbound))
        with self.tracer.start_as_current_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            yield span

    @contextmanager
    def client_span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
        """A client span, child of the current span."""
        with self.tracer.start_as_current_span(
            name, kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            yield span

    def fail(self, span: Span, error_type: str, description: str) -> None:
        """Marks ``span`` as failed (``error.type`` and an ERROR status)."""
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, description))

    def outbound_headers(self, inbound: Mapping[str, str]) -> dict[str, str]:
        """Trace headers for a call made in the current span."""
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        return carrier if trace_context.TRACEPARENT in carrier else trace_context.fallback(inbound)

    def shutdown(self) -> None:
        self.provider.shutdown()
{%- else -%}
"""Tracing stand-in. OpenTelemetry was not enabled when this service was
created; calls to the gateway still carry W3C trace context (see
``trace_context``)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from . import trace_context


class _NoSpan:
    """Accepts what an OpenTelemetry span would and records nothing."""

    def set_attribute(self, key: str, value: Any) -> None:
        pass

    def set_status(self, *args: Any, **kwargs: Any) -> None:
        pass


class Telemetry:
    def __init__(self, service_name: str, exporter: Any = None) -> None:
        self.service_name = service_name

    @contextmanager
    def server_span(
        self, name: str, inbound: Mapping[str, str], attributes: Mapping[str, Any] | None = None
    ) -> Iterator[_NoSpan]:
        yield _NoSpan()

    @contextmanager
    def client_span(self, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[_NoSpan]:
        yield _NoSpan()

    def fail(self, span: _NoSpan, error_type: str, description: str) -> None:
        pass

    def outbound_headers(self, inbound: Mapping[str, str]) -> dict[str, str]:
        return trace_context.fallback(inbound)

    def shutdown(self) -> None:
        pass
{%- endif %}
