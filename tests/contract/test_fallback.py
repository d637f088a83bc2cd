"""LLM_FALLBACKS across real vendor fakes, and what a client of the API sees when the vendor
is gone: 503 problem+json with Retry-After, never the key."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import pytest
from fastapi import Request
from pydantic import SecretStr

from lorebase.context import AppContext
from lorebase.main import create_app
from lorebase.providers.base import (
    AuthFailed,
    Message,
    ProviderUnavailable,
    collect_warnings,
    format_sources,
)
from tests.contract.conftest import KEY, llm_for
from tests.contract.fake_vendor import FakeVendor, Reply
from tests.contract.test_ollama import chat_part

OPENAI_CHAT = "/v1/chat/completions"
OLLAMA_CHAT = "/api/chat"
MESSAGES = [Message("user", "Capital of France?")]


@pytest.fixture
def ollama() -> Any:
    fake = FakeVendor()
    yield fake
    fake.stop()


def chain(openai_url: str, ollama_url: str, fallbacks: str = "ollama") -> Any:
    return llm_for(
        llm_provider="openai",
        llm_model="gpt-4o-mini",
        openai_api_key=SecretStr(KEY),
        openai_base_url=openai_url + "/v1",
        ollama_base_url=ollama_url,
        llm_fallbacks=fallbacks.split(","),
        provider_max_retries=1,
    )


def down() -> Reply:
    return Reply(503, {"error": {"message": f"maintenance for {KEY}", "type": "server_error"}})


async def test_an_unavailable_primary_falls_back_and_says_so(
    vendor: FakeVendor, ollama: FakeVendor
) -> None:
    vendor.script(OPENAI_CHAT, down(), down())
    ollama.script(OLLAMA_CHAT, Reply(json=chat_part("Paris", done=True)))
    llm = chain(vendor.url, ollama.url)

    with collect_warnings() as warnings:
        result = await llm.complete(MESSAGES)

    assert result.text == "Paris"
    assert len(vendor.calls(OPENAI_CHAT)) == 2  # its own retry first
    # The fallback got its own default model, not the primary's LLM_MODEL.
    assert ollama.calls(OLLAMA_CHAT)[0].body["model"] == "llama3.2"
    (warning,) = result.warnings
    assert "'openai' unavailable" in warning
    assert "'ollama'" in warning
    assert KEY not in warning
    assert warnings == [warning]


async def test_a_stream_falls_back_before_its_first_delta(
    vendor: FakeVendor, ollama: FakeVendor
) -> None:
    vendor.script(OPENAI_CHAT, down(), down())
    ollama.script(OLLAMA_CHAT, Reply(ndjson=[chat_part("Pa"), chat_part("ris"), chat_part("", 1)]))

    with collect_warnings() as warnings:
        deltas = [d async for d in chain(vendor.url, ollama.url).stream(MESSAGES)]

    assert deltas == ["Pa", "ris"]
    assert len(warnings) == 1


async def test_the_chain_can_end_in_the_extractive_answerer(
    vendor: FakeVendor, ollama: FakeVendor
) -> None:
    vendor.script(OPENAI_CHAT, down(), down())
    ollama.script(OLLAMA_CHAT, *[Reply(500, {"error": "boom"})] * 2)
    llm = chain(vendor.url, ollama.url, "ollama,extractive")
    prompt = format_sources("What is the capital of France?", ["Paris is the capital of France."])

    result = await llm.complete(prompt)

    assert result.text == "Paris is the capital of France. [1]"
    assert result.model_id == "extractive"
    assert len(result.warnings) == 2


async def test_when_every_provider_is_down_the_last_error_is_raised(
    vendor: FakeVendor, ollama: FakeVendor
) -> None:
    vendor.script(OPENAI_CHAT, down(), down())
    ollama.script(OLLAMA_CHAT, *[Reply(503, {"error": "loading"})] * 2)
    with pytest.raises(ProviderUnavailable, match="ollama"):
        await chain(vendor.url, ollama.url).complete(MESSAGES)


async def test_a_refused_key_is_not_hidden_by_a_fallback(
    vendor: FakeVendor, ollama: FakeVendor
) -> None:
    vendor.script(OPENAI_CHAT, Reply(401, {"error": {"message": "bad key", "type": "auth"}}))
    with pytest.raises(AuthFailed):
        await chain(vendor.url, ollama.url).complete(MESSAGES)
    assert ollama.calls(OLLAMA_CHAT) == []


async def _ask(request: Request) -> dict[str, str]:
    completion_ = await request.app.state.ctx.llm.complete(MESSAGES)
    return {"text": completion_.text}


def _api(ctx: AppContext, llm: Any) -> httpx.AsyncClient:
    """The real app and problem handlers, its context holding `llm`, plus one route that
    asks it (the /rag/query route is another issue's)."""
    context = dataclasses.replace(ctx, llm=llm)
    app = create_app(context=context)
    app.state.ctx = context
    app.add_api_route("/_contract/ask", _ask, methods=["POST"])
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_a_dead_vendor_is_a_503_problem_with_retry_after(ctx: AppContext) -> None:
    dead = FakeVendor()
    url = dead.url
    dead.stop()  # the vendor was killed
    llm = llm_for(
        llm_provider="openai",
        openai_api_key=SecretStr(KEY),
        openai_base_url=url + "/v1",
        provider_max_retries=0,
    )
    async with _api(ctx, llm) as client:
        response = await client.post("/_contract/ask")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["status"] == 503
    assert body["provider"] == "openai"
    assert body["request_id"]
    assert KEY not in response.text


async def test_a_vendor_rate_limit_passes_its_retry_after_on(
    ctx: AppContext, vendor: FakeVendor
) -> None:
    vendor.script(OPENAI_CHAT, Reply(429, {"error": {"message": "quota"}}, {"Retry-After": "90"}))
    llm = llm_for(
        llm_provider="openai", openai_api_key=SecretStr(KEY), openai_base_url=vendor.url + "/v1"
    )
    async with _api(ctx, llm) as client:
        response = await client.post("/_contract/ask")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "90"


async def test_a_refused_key_is_a_503_without_vendor_detail(
    ctx: AppContext, vendor: FakeVendor
) -> None:
    vendor.script(OPENAI_CHAT, Reply(401, {"error": {"message": f"Incorrect API key {KEY}"}}))
    llm = llm_for(
        llm_provider="openai", openai_api_key=SecretStr(KEY), openai_base_url=vendor.url + "/v1"
    )
    async with _api(ctx, llm) as client:
        response = await client.post("/_contract/ask")

    assert response.status_code == 503
    assert "refused" in response.json()["detail"]
    assert KEY not in response.text
    assert "Incorrect API key" not in response.text


async def test_the_api_answers_through_a_fallback(
    ctx: AppContext, vendor: FakeVendor, ollama: FakeVendor
) -> None:
    vendor.script(OPENAI_CHAT, down(), down())
    ollama.script(OLLAMA_CHAT, Reply(json=chat_part("Paris", done=True)))
    async with _api(ctx, chain(vendor.url, ollama.url)) as client:
        response = await client.post("/_contract/ask")
    assert response.json() == {"text": "Paris"}
