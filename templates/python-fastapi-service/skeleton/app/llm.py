"""Client for the Paved platform LLM gateway (OpenAI-compatible
``POST {PAVED_LLM_GATEWAY_URL}/chat/completions``).

Every call carries ``Authorization: Bearer <key>``, an ``Idempotency-Key``
(retries reuse it, so the gateway never runs or bills a call twice) and W3C
trace context (``traceparent``, ``tracestate``).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Mapping

import httpx

from .config import MissingKeyError, Settings
from .telemetry import Telemetry

IDEMPOTENCY_KEY = "Idempotency-Key"
RETRYABLE_STATUSES = {408, 429, 500, 502, 503, 504}


class InvalidIdempotencyKey(ValueError):
    pass


def idempotency_key(inbound: Mapping[str, str]) -> str:
    """The Idempotency-Key for the gateway call made on behalf of a request: the
    client's own Idempotency-Key when it sent one (so a client retry is also a
    gateway retry), else a new UUID v4. A handler that makes more than one
    gateway call per request should suffix the key per call (e.g. ``f"{key}:2"``)."""
    value = inbound.get(IDEMPOTENCY_KEY.lower())
    if value is None:
        return str(uuid.uuid4())
    key = value.strip()
    if not key or len(key) > 255 or not all(33 <= ord(c) <= 126 for c in key):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return key


@dataclass
class Completion:
    content: str
    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class GatewayError(Exception):
    """A failed gateway call; ``status`` is what this service answers with."""

    def __init__(self, message: str, status: int, error_type: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


def _error_message(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text.strip()
    return str(message)[:200]


class GatewayClient:
    def __init__(
        self,
        settings: Settings,
        telemetry: Telemetry,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.telemetry = telemetry
        self._http = httpx.AsyncClient(
            base_url=settings.gateway_url + "/",
            timeout=httpx.Timeout(settings.timeout_seconds, connect=5.0),
            transport=transport,
            # The gateway is a cluster-internal service: never send it through a proxy.
            trust_env=False,
            headers={"User-Agent": f"{settings.service_name}/0.1.0"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def chat(
        self, messages: list[dict[str, str]], key: str, inbound: Mapping[str, str]
    ) -> Completion:
        """One chat completion. ``inbound`` are the headers of the request being
        served, used to continue the caller's trace."""
        model = self.settings.model
        # Span name and attributes follow the OpenTelemetry GenAI conventions.
        attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
        with self.telemetry.client_span(f"chat {model}", attributes) as span:
            try:
                completion = await self._send(messages, key, inbound, span)
            except GatewayError as e:
                self.telemetry.fail(span, e.error_type, str(e))
                raise
            if completion.model:
                span.set_attribute("gen_ai.response.model", completion.model)
            if completion.input_tokens is not None:
                span.set_attribute("gen_ai.usage.input_tokens", completion.input_tokens)
            if completion.output_tokens is not None:
                span.set_attribute("gen_ai.usage.output_tokens", completion.output_tokens)
            return completion

    async def _send(self, messages, key, inbound, span) -> Completion:
        try:
            token = self.settings.key.load()
        except MissingKeyError as e:
            raise GatewayError(str(e), 503, "no_key") from None
        headers = {
            **self.telemetry.outbound_headers(inbound),
            "Authorization": f"Bearer {token}",
            IDEMPOTENCY_KEY: key,
        }
        body = {"model": self.settings.model, "messages": messages, "temperature": 0.2}
        attempts = max(self.settings.max_attempts, 1)
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = await self._http.post("chat/completions", json=body, headers=headers)
            except httpx.TimeoutException:
                if not last:
                    await self._backoff(attempt)
                    continue
                raise GatewayError("the LLM gateway did not answer in time", 504, "timeout") from None
            except httpx.TransportError as e:
                if not last and isinstance(e, httpx.ConnectError):
                    await self._backoff(attempt)
                    continue
                raise GatewayError(
                    f"the LLM gateway could not be reached: {type(e).__name__}", 502, "unreachable"
                ) from None
            span.set_attribute("http.response.status_code", response.status_code)
            if response.is_success:
                return self._parse(response)
            if response.status_code in RETRYABLE_STATUSES and not last:
                await self._backoff(attempt)
                continue
            status = 429 if response.status_code == 429 else 502
            raise GatewayError(
                f"the LLM gateway answered {response.status_code}: {_error_message(response)}",
                status,
                str(response.status_code),
            )
        raise AssertionError("unreachable")

    async def _backoff(self, attempt: int) -> None:
        await asyncio.sleep(self.settings.retry_backoff_seconds * 2 ** (attempt - 1))

    @staticmethod
    def _parse(response: httpx.Response) -> Completion:
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise GatewayError("the LLM gateway sent an unexpected answer", 502, "bad_response") from None
        if not isinstance(content, str):
            raise GatewayError("the LLM gateway sent an unexpected answer", 502, "bad_response")
        usage = data.get("usage") or {}
        return Completion(
            content=content,
            model=data.get("model"),
            input_tokens=usage.get("prompt_tokens"),
            output_tokens=usage.get("completion_tokens"),
        )
