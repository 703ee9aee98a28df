"""HTTP routes. Run with ``uvicorn app.main:create_app --factory``."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .config import MissingKeyError, Settings
from .llm import IDEMPOTENCY_KEY, GatewayClient, GatewayError, InvalidIdempotencyKey, idempotency_key
from .telemetry import Telemetry

log = logging.getLogger("app")

#: The longest text /v1/summarize accepts, in characters.
MAX_TEXT_CHARS = 100_000

SUMMARY_PROMPT = (
    "You summarize text. Answer with a concise summary of at most five sentences, "
    "in the language of the text, and nothing else."
)


class SummarizeRequest(BaseModel):
    text: str


class SummarizeResponse(BaseModel):
    summary: str


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """The whole service. Tests pass a fake gateway as ``transport``."""
    settings = settings or Settings.from_env()
    telemetry = telemetry or Telemetry(settings.service_name)
    gateway = GatewayClient(settings, telemetry, transport=transport)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            settings.key.load()
        except MissingKeyError as e:
            log.warning("%s; /v1/summarize answers 503 until the LLM gateway key is there", e)
        yield
        await gateway.aclose()
        telemetry.shutdown()

    app = FastAPI(title=settings.service_name, lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/summarize", response_model=SummarizeResponse)
    async def summarize(body: SummarizeRequest, request: Request):
        attributes = {"http.request.method": "POST", "http.route": "/v1/summarize"}
        with telemetry.server_span("POST /v1/summarize", request.headers, attributes) as span:
            response = await _summarize(body, request)
            span.set_attribute("http.response.status_code", response.status_code)
            return response

    async def _summarize(body: SummarizeRequest, request: Request) -> JSONResponse:
        try:
            key = idempotency_key(request.headers)
        except InvalidIdempotencyKey as e:
            return _error(400, str(e))
        if not body.text.strip():
            return _error(400, "text must not be empty")
        if len(body.text) > MAX_TEXT_CHARS:
            return _error(413, f"text is longer than {MAX_TEXT_CHARS} characters")
        # Echo the key so clients that did not send one can retry with it.
        echo = {IDEMPOTENCY_KEY: key}
        messages = [
            {"role": "system", "content": SUMMARY_PROMPT},
            {"role": "user", "content": body.text},
        ]
        try:
            completion = await gateway.chat(messages, key, request.headers)
        except GatewayError as e:
            log.warning("LLM gateway call failed: %s", e)
            return _error(e.status, str(e), echo)
        return JSONResponse({"summary": completion.content.strip()}, headers=echo)

    return app
