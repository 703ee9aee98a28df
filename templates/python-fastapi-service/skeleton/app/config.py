"""Runtime configuration, read from environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

#: The platform LLM gateway inside the cluster (OpenAI-compatible).
DEFAULT_GATEWAY_URL = "http://paved.platform.svc/llm/v1"
#: The model chosen when the service was created.
DEFAULT_MODEL = "${{ values.model }}"
#: Where the Vault Agent writes the gateway key, as KEY=value lines.
DEFAULT_KEY_FILE = "/vault/secrets/llm-gateway"
#: The variable holding the key, in the environment or in the key file.
KEY_VAR = "PAVED_LLM_GATEWAY_KEY"
#: The service name (also the OpenTelemetry service.name unless OTEL_SERVICE_NAME is set).
SERVICE_NAME = "${{ values.name }}"


class MissingKeyError(Exception):
    """There is no gateway key in the environment nor in the key file."""


def parse_key_file(text: str) -> str | None:
    """Finds PAVED_LLM_GATEWAY_KEY=value in a dotenv-style file (as rendered by the Vault Agent)."""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ")
        key, sep, value = line.partition("=")
        if sep and key.strip() == KEY_VAR:
            value = value.strip().strip('"')
            return value or None
    return None


@dataclass(frozen=True)
class KeySource:
    """Where the gateway key comes from: a fixed value, or a file re-read on every call
    (so a key rotated in Vault is used without a restart)."""

    value: str | None = None
    path: Path | None = None

    def load(self) -> str:
        if self.value:
            return self.value
        path = self.path or Path(DEFAULT_KEY_FILE)
        try:
            text = path.read_text()
        except OSError as e:
            raise MissingKeyError(
                f"no LLM gateway key: {KEY_VAR} is not set and {path} cannot be read ({e.strerror})"
            ) from None
        key = parse_key_file(text)
        if key is None:
            raise MissingKeyError(f"no LLM gateway key: {path} has no {KEY_VAR}= line")
        return key


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to run."""

    gateway_url: str = DEFAULT_GATEWAY_URL
    model: str = DEFAULT_MODEL
    key: KeySource = field(default_factory=KeySource)
    timeout_seconds: float = 30.0
    max_attempts: int = 2
    retry_backoff_seconds: float = 0.2
    service_name: str = SERVICE_NAME

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        get: Callable[[str], str | None] = lambda name: (env.get(name) or "").strip() or None
        key_value = get(KEY_VAR)
        key = KeySource(value=key_value) if key_value else KeySource(
            path=Path(get("PAVED_LLM_GATEWAY_KEY_FILE") or DEFAULT_KEY_FILE)
        )
        return cls(
            gateway_url=(get("PAVED_LLM_GATEWAY_URL") or DEFAULT_GATEWAY_URL).rstrip("/"),
            model=get("PAVED_LLM_MODEL") or DEFAULT_MODEL,
            key=key,
            timeout_seconds=float(get("PAVED_LLM_TIMEOUT_SECONDS") or 30),
            max_attempts=min(max(int(get("PAVED_LLM_MAX_ATTEMPTS") or 2), 1), 5),
            service_name=get("OTEL_SERVICE_NAME") or SERVICE_NAME,
        )
