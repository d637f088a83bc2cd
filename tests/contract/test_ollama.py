"""Ollama contract: `/api/chat` (JSON and NDJSON stream) and `/api/embed`, error bodies
(`{"error": ...}`) as documented, through the official SDK and our providers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from lorebase.providers.base import BadResponse, Message, ProviderUnavailable, RateLimited
from tests.contract.conftest import drain, embedder_for, llm_for
from tests.contract.fake_vendor import FakeVendor, Reply

CHAT = "/api/chat"
EMBED = "/api/embed"
MESSAGES = [Message("system", "Be brief."), Message("user", "Capital of France?")]


def chat_part(content: str, done: bool = False) -> dict[str, Any]:
    part: dict[str, Any] = {
        "model": "llama3.2",
        "created_at": "2026-11-24T12:00:00.000Z",
        "message": {"role": "assistant", "content": content},
        "done": done,
    }
    if done:
        part.update(
            done_reason="stop",
            total_duration=1_000_000,
            load_duration=1000,
            prompt_eval_count=26,
            prompt_eval_duration=1000,
            eval_count=5,
            eval_duration=1000,
        )
    return part


def ollama_llm(vendor: FakeVendor, **values: Any) -> Any:
    return llm_for(llm_provider="ollama", ollama_base_url=vendor.url, **values)


async def test_chat_sends_model_messages_and_options(vendor: FakeVendor) -> None:
    vendor.script(CHAT, Reply(json=chat_part("Paris [1]", done=True)))

    result = await ollama_llm(vendor, llm_model="llama3.2").complete(
        MESSAGES, max_tokens=40, temperature=0.1, stop=["###"]
    )

    (request,) = vendor.calls(CHAT)
    assert request.body["model"] == "llama3.2"
    assert request.body["stream"] is False
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    assert request.body["options"] == {"temperature": 0.1, "num_predict": 40, "stop": ["###"]}
    assert "authorization" not in request.headers
    assert result.text == "Paris [1]"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (26, 5)


async def test_json_mode_sends_format(vendor: FakeVendor) -> None:
    vendor.script(CHAT, Reply(json=chat_part('{"a": 1}', done=True)))
    await ollama_llm(vendor).complete(MESSAGES, response_format={"type": "json_object"})
    assert vendor.calls(CHAT)[0].body["format"] == "json"


async def test_stream_reads_ndjson_parts(vendor: FakeVendor) -> None:
    vendor.script(
        CHAT,
        Reply(ndjson=[chat_part("Par"), chat_part("is"), chat_part(" [1]"), chat_part("", True)]),
    )
    deltas = [d async for d in ollama_llm(vendor).stream(MESSAGES)]
    assert deltas == ["Par", "is", " [1]"]
    assert vendor.calls(CHAT)[0].body["stream"] is True


async def test_a_missing_model_is_a_bad_response_with_ollamas_message(vendor: FakeVendor) -> None:
    vendor.script(CHAT, Reply(404, {"error": 'model "llama9" not found, try pulling it first'}))
    with pytest.raises(BadResponse, match="try pulling it first"):
        await ollama_llm(vendor, llm_model="llama9").complete(MESSAGES)
    assert len(vendor.calls(CHAT)) == 1


async def test_503_with_retry_after_is_retried(vendor: FakeVendor) -> None:
    vendor.script(
        CHAT,
        Reply(503, {"error": "server busy"}, {"Retry-After": "1"}),
        Reply(json=chat_part("ok", done=True)),
    )
    started = time.monotonic()
    assert (await ollama_llm(vendor).complete(MESSAGES)).text == "ok"
    assert time.monotonic() - started >= 1.0


async def test_429_exhausts_retries_as_rate_limited(vendor: FakeVendor) -> None:
    busy = Reply(429, {"error": "too many requests"}, {"Retry-After": "0"})
    vendor.script(CHAT, busy, busy)
    with pytest.raises(RateLimited, match="too many requests"):
        await ollama_llm(vendor, provider_max_retries=1).complete(MESSAGES)
    assert len(vendor.calls(CHAT)) == 2


async def test_an_error_line_inside_the_stream_raises(vendor: FakeVendor) -> None:
    vendor.script(CHAT, Reply(ndjson=[chat_part("Par"), {"error": "model runner crashed"}]))
    received: list[str] = []
    with pytest.raises(ProviderUnavailable, match="model runner crashed"):
        await drain(ollama_llm(vendor).stream(MESSAGES), received)
    assert received == ["Par"]


async def test_a_slow_answer_times_out(vendor: FakeVendor) -> None:
    slow = Reply(json=chat_part("late", done=True), delay=1.2)
    vendor.script(CHAT, slow)
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await ollama_llm(vendor, provider_read_timeout=0.3, provider_max_retries=0).complete(
            MESSAGES
        )


async def test_no_server_is_unavailable() -> None:
    dead = FakeVendor()
    url = dead.url
    dead.stop()
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await llm_for(llm_provider="ollama", ollama_base_url=url, provider_max_retries=0).complete(
            MESSAGES
        )


async def test_embed_sends_the_batch_and_normalises(vendor: FakeVendor) -> None:
    vectors = [[3.0, 4.0] + [0.0] * 766, [0.0] * 767 + [5.0]]
    vendor.script(
        EMBED, Reply(json={"model": "nomic-embed-text", "embeddings": vectors, "total_duration": 1})
    )
    embedder = embedder_for(embedding_provider="ollama", ollama_base_url=vendor.url)

    result = await embedder.embed_batch(["one", "two"])

    (request,) = vendor.calls(EMBED)
    assert request.body["model"] == "nomic-embed-text"
    assert request.body["input"] == ["one", "two"]
    assert embedder.dimension == 768
    assert result[0][:2] == pytest.approx([0.6, 0.8])
    assert result[1][-1] == pytest.approx(1.0)


async def test_embed_of_another_dimension_is_a_bad_response(vendor: FakeVendor) -> None:
    vendor.script(EMBED, Reply(json={"model": "all-minilm", "embeddings": [[1.0, 0.0]]}))
    embedder = embedder_for(
        embedding_provider="ollama", embedding_model="all-minilm", ollama_base_url=vendor.url
    )
    with pytest.raises(BadResponse, match="dimension"):
        await embedder.embed_batch(["x"])
