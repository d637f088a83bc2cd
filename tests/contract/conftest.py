"""Fixtures for vendor contract tests: a fake vendor on loopback, a key that must never leak,
settings that point a provider at the fake, and a capture of every log record."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from lorebase.providers.base import ChatModel, Embedder
from lorebase.providers.http import close_clients
from lorebase.providers.registry import build_embedder, build_llm, load_registry
from lorebase.settings import Settings
from tests.contract.fake_vendor import FakeVendor

KEY = "sk-test-" + secrets.token_hex(20)


@pytest.fixture(autouse=True)
async def _close_http_clients() -> AsyncIterator[None]:
    """The thin HTTP client's pools (embeddings) closed in the test's own event loop."""
    yield
    await close_clients()


@pytest.fixture
def vendor() -> Iterator[FakeVendor]:
    fake = FakeVendor()
    yield fake
    fake.stop()


def provider_settings(**values: Any) -> Settings:
    """Settings with fast timeouts and few retries; no .env, no environment keys."""
    base: dict[str, Any] = {
        "provider_connect_timeout": 1.0,
        "provider_read_timeout": 2.0,
        "provider_max_retries": 2,
        "openai_api_key": None,
        "openai_base_url": None,
        "anthropic_api_key": None,
        "openrouter_api_key": None,
        "llm_fallbacks": [],
    }
    base.update(values)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def llm_for(**values: Any) -> ChatModel:
    """The chat model the registry builds for these settings."""
    return build_llm(provider_settings(**values), load_registry(plugins=False))


def embedder_for(**values: Any) -> Embedder:
    return build_embedder(provider_settings(**values), load_registry(plugins=False))


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))  # includes exc_info tracebacks

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def logs() -> Iterator[_Capture]:
    """Every record any logger emits during the test, at DEBUG, tracebacks included."""
    handler = _Capture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


async def drain(stream: Any, into: list[str]) -> None:
    """Collect a stream's deltas into `into`, so a test sees them even when it raises."""
    async for delta in stream:
        into.append(delta)
