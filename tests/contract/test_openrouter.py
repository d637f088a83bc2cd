"""OpenRouter contract: its OpenAI-compatible `/api/v1/chat/completions` with the attribution
headers it documents (`HTTP-Referer`, `X-Title`) and its error bodies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from lorebase.providers.base import AuthFailed, Message, RateLimited
from tests.contract.conftest import KEY, llm_for
from tests.contract.fake_vendor import FakeVendor, Reply
from tests.contract.test_openai import chunk, completion

CHAT = "/api/v1/chat/completions"
MESSAGES = [Message("user", "Hello")]


def router(vendor: FakeVendor, **values: Any) -> Any:
    return llm_for(
        llm_provider="openrouter",
        openrouter_api_key=SecretStr(KEY),
        openrouter_base_url=vendor.url + "/api/v1",
        openrouter_app_url="https://example.test/app",
        openrouter_app_name="Lorebase Test",
        **values,
    )


def error(status: int, message: str) -> Reply:
    return Reply(status, {"error": {"code": status, "message": message}})


async def test_sends_attribution_headers_bearer_and_the_routed_model(vendor: FakeVendor) -> None:
    vendor.script(CHAT, Reply(json=completion("hi", model="anthropic/claude-3.5-haiku")))

    result = await router(vendor, llm_model="anthropic/claude-3.5-haiku").complete(
        MESSAGES, max_tokens=30
    )

    (request,) = vendor.calls(CHAT)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["http-referer"] == "https://example.test/app"
    assert request.headers["x-title"] == "Lorebase Test"
    assert request.body["model"] == "anthropic/claude-3.5-haiku"
    assert request.body["max_tokens"] == 30
    assert result.text == "hi"
    assert result.model_id == "anthropic/claude-3.5-haiku"


async def test_default_model_is_routed_to_openai(vendor: FakeVendor) -> None:
    vendor.script(CHAT, Reply(json=completion()))
    await router(vendor).complete(MESSAGES)
    assert vendor.calls(CHAT)[0].body["model"] == "openai/gpt-4o-mini"


async def test_streams_sse_with_openrouter_comments(vendor: FakeVendor) -> None:
    # OpenRouter sends SSE comments (": OPENROUTER PROCESSING") to keep connections alive.
    vendor.script(
        CHAT,
        Reply(sse=[": OPENROUTER PROCESSING\n\n", chunk("a"), chunk("b"), "data: [DONE]\n\n"]),
    )
    assert [d async for d in router(vendor).stream(MESSAGES)] == ["a", "b"]


async def test_rate_limits_end_as_rate_limited_with_retry_after(vendor: FakeVendor) -> None:
    limited = Reply(
        429, {"error": {"code": 429, "message": "Rate limit exceeded"}}, {"Retry-After": "0"}
    )
    vendor.script(CHAT, limited, limited)
    with pytest.raises(RateLimited) as caught:
        await router(vendor, provider_max_retries=1).complete(MESSAGES)
    assert caught.value.provider == "openrouter"
    assert caught.value.retry_after == 0
    assert len(vendor.calls(CHAT)) == 2


async def test_401_does_not_leak_the_key(vendor: FakeVendor, logs: Any) -> None:
    vendor.script(CHAT, error(401, f"No auth credentials found for {KEY}"))
    with pytest.raises(AuthFailed) as caught:
        await router(vendor).complete(MESSAGES)
    assert KEY not in str(caught.value)
    assert KEY not in logs.text
