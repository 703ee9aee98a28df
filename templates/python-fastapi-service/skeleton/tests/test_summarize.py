"""The real app against a fake OpenAI-compatible gateway (httpx.MockTransport)
that records what it got. No network and no real key are needed."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import DEFAULT_MODEL, KeySource, Settings, parse_key_file
from app.main import create_app
from app.trace_context import TraceParent, fallback
{%- if values.otel %}
from app.telemetry import Telemetry
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
{%- endif %}

KEY = "test-gateway-key"
INBOUND_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class FakeGateway:
    """Answers like /chat/completions; ``failures`` are statuses answered first."""

    def __init__(self, failures: list[int] | None = None) -> None:
        self.failures = list(failures or [])
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.path == "/llm/v1/chat/completions"
        if self.failures:
            status = self.failures.pop(0)
            return httpx.Response(status, json={"error": {"message": f"scripted {status}"}})
        body = json.loads(request.content)
        words = len(body["messages"][1]["content"].split())
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": f" {words} words. "}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            },
        )

    def sent(self, header: str) -> list[str]:
        return [r.headers[header] for r in self.requests]


def client(fake: FakeGateway, key: KeySource | None = None, **kwargs) -> TestClient:
    settings = Settings(
        gateway_url="http://paved.platform.svc/llm/v1",
        key=key or KeySource(value=KEY),
        retry_backoff_seconds=0,
    )
    return TestClient(create_app(settings, transport=httpx.MockTransport(fake), **kwargs))


def test_healthz():
    with client(FakeGateway()) as c:
        r = c.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_summarize_sends_key_idempotency_key_and_model():
    fake = FakeGateway()
    with client(fake) as c:
        r = c.post("/v1/summarize", json={"text": "one two three four"}, headers={"Idempotency-Key": "client-key-1"})
    assert r.status_code == 200
    assert r.json() == {"summary": "4 words."}
    assert r.headers["idempotency-key"] == "client-key-1"

    [request] = fake.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["idempotency-key"] == "client-key-1"
    body = json.loads(request.content)
    assert body["model"] == DEFAULT_MODEL
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][1] == {"role": "user", "content": "one two three four"}


def test_a_new_uuid4_idempotency_key_when_the_client_gives_none():
    fake = FakeGateway()
    with client(fake) as c:
        first = c.post("/v1/summarize", json={"text": "a b"})
        c.post("/v1/summarize", json={"text": "a b"})
    keys = fake.sent("idempotency-key")
    assert keys[0] == first.headers["idempotency-key"]
    assert keys[0] != keys[1]
    assert all(uuid.UUID(k).version == 4 for k in keys)


def test_retries_reuse_the_same_idempotency_key():
    fake = FakeGateway(failures=[503])
    with client(fake) as c:
        r = c.post("/v1/summarize", json={"text": "retry me"})
    assert r.status_code == 200
    assert len(fake.requests) == 2
    assert len(set(fake.sent("idempotency-key"))) == 1
    assert fake.sent("authorization") == [f"Bearer {KEY}"] * 2


def test_the_callers_trace_is_continued():
    fake = FakeGateway()
    with client(fake) as c:
        c.post("/v1/summarize", json={"text": "x"}, headers={"traceparent": INBOUND_TRACE})
        c.post("/v1/summarize", json={"text": "y"})
    continued, fresh = (TraceParent.parse(v) for v in fake.sent("traceparent"))
    assert continued.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert continued.span_id != "00f067aa0ba902b7"
    assert fresh is not None and fresh.trace_id != continued.trace_id


def test_the_key_is_read_from_the_vault_agent_file(tmp_path: Path):
    path = tmp_path / "llm-gateway"
    path.write_text("OTHER=x\nPAVED_LLM_GATEWAY_KEY=from-vault\n")
    fake = FakeGateway()
    with client(fake, key=KeySource(path=path)) as c:
        assert c.post("/v1/summarize", json={"text": "hello"}).status_code == 200
        path.write_text("PAVED_LLM_GATEWAY_KEY=rotated\n")
        assert c.post("/v1/summarize", json={"text": "hello"}).status_code == 200
    assert fake.sent("authorization") == ["Bearer from-vault", "Bearer rotated"]


def test_without_a_key_the_service_answers_503_and_calls_nothing(tmp_path: Path):
    fake = FakeGateway()
    with client(fake, key=KeySource(path=tmp_path / "missing")) as c:
        r = c.post("/v1/summarize", json={"text": "hello"})
    assert r.status_code == 503
    assert "PAVED_LLM_GATEWAY_KEY" in r.json()["error"]
    assert fake.requests == []


def test_client_errors_from_the_gateway_are_not_retried():
    fake = FakeGateway(failures=[401])
    with client(fake) as c:
        r = c.post("/v1/summarize", json={"text": "hello"})
    assert r.status_code == 502
    assert "scripted 401" in r.json()["error"]
    assert len(fake.requests) == 1


def test_bad_requests_never_reach_the_gateway():
    fake = FakeGateway()
    with client(fake) as c:
        assert c.post("/v1/summarize", json={"text": "  "}).status_code == 400
        assert c.post("/v1/summarize", json={"nope": 1}).status_code == 422
        bad_key = c.post("/v1/summarize", json={"text": "x"}, headers={"Idempotency-Key": "has space"})
        assert bad_key.status_code == 400
    assert fake.requests == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# vault\nexport PAVED_LLM_GATEWAY_KEY=\"pk-abc=def\"\n", "pk-abc=def"),
        ("OTHER=1\n", None),
        ("PAVED_LLM_GATEWAY_KEY=\n", None),
    ],
)
def test_key_file_parsing(text, expected):
    assert parse_key_file(text) == expected


def test_settings_from_env():
    s = Settings.from_env({"PAVED_LLM_GATEWAY_URL": "http://gw/v1/", "PAVED_LLM_GATEWAY_KEY": " k "})
    assert s.gateway_url == "http://gw/v1"
    assert s.key.load() == "k"
    assert Settings.from_env({}).key.path == Path("/vault/secrets/llm-gateway")


def test_fallback_trace_context():
    out = fallback({"traceparent": INBOUND_TRACE, "tracestate": "vendor=abc"})
    assert TraceParent.parse(out["traceparent"]).trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert out["tracestate"] == "vendor=abc"
    assert TraceParent.parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01") is None
{%- if values.otel %}


def test_spans_follow_the_genai_conventions():
    exporter = InMemorySpanExporter()
    fake = FakeGateway()
    with client(fake, telemetry=Telemetry("test", exporter=exporter)) as c:
        c.post("/v1/summarize", json={"text": "x"}, headers={"traceparent": INBOUND_TRACE})
    spans = {s.name: s for s in exporter.get_finished_spans()}
    chat = spans[f"chat {DEFAULT_MODEL}"]
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == DEFAULT_MODEL
    assert chat.attributes["gen_ai.usage.input_tokens"] == 12
    server = spans["POST /v1/summarize"]
    assert chat.parent.span_id == server.context.span_id
    assert format(server.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    # The gateway saw the chat span as its parent.
    sent = TraceParent.parse(fake.requests[0].headers["traceparent"])
    assert sent.span_id == format(chat.context.span_id, "016x")
{%- endif %}
