"""OpenAI contract: Chat Completions (JSON and SSE) and Embeddings, as documented, through
the official SDK and our provider classes built by the registry."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from pydantic import SecretStr

from lorebase.providers.base import (
    AuthFailed,
    BadResponse,
    Message,
    ProviderUnavailable,
    RateLimited,
)
from tests.contract.conftest import KEY, drain, embedder_for, llm_for
from tests.contract.fake_vendor import FakeVendor, Reply

CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
MESSAGES = [Message("system", "Be brief."), Message("user", "Capital of France?")]


def completion(text: str = "Paris [1]", model: str = "gpt-4o-mini-2024-07-18") -> dict[str, Any]:
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24},
    }


def chunk(content: str | None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": content} if content is not None else {"role": "assistant", "content": ""}
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def error(status: int, message: str, kind: str, code: str | None = None) -> Reply:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return Reply(status, body)


def openai_llm(vendor: FakeVendor, **values: Any) -> Any:
    values.setdefault("openai_api_key", SecretStr(KEY))
    return llm_for(llm_provider="openai", openai_base_url=vendor.url + "/v1", **values)


async def test_complete_sends_model_messages_and_key_and_parses_the_answer(
    vendor: FakeVendor,
) -> None:
    vendor.script(CHAT, Reply(json=completion()))
    llm = openai_llm(vendor, llm_model="gpt-4o-mini")

    result = await llm.complete(MESSAGES, max_tokens=50, temperature=0.2, stop=["\n\n"])

    (request,) = vendor.calls(CHAT)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
    ]
    # A custom base URL may be an older compatible server: it gets `max_tokens`.
    assert request.body["max_tokens"] == 50
    assert request.body["temperature"] == 0.2
    assert request.body["stop"] == ["\n\n"]
    assert "stream" not in request.body or request.body["stream"] is False
    assert result.text == "Paris [1]"
    assert result.model_id == "gpt-4o-mini-2024-07-18"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (21, 3)


async def test_stream_yields_sse_deltas_until_done(vendor: FakeVendor) -> None:
    vendor.script(
        CHAT,
        Reply(
            sse=[
                chunk(None),
                chunk("Par"),
                chunk("is"),
                chunk(" [1]"),
                chunk(None, "stop"),
                "data: [DONE]\n\n",
            ]
        ),
    )
    llm = openai_llm(vendor)

    deltas = [delta async for delta in llm.stream(MESSAGES, max_tokens=20)]

    assert deltas == ["Par", "is", " [1]"]
    assert vendor.calls(CHAT)[0].body["stream"] is True


async def test_429_is_retried_after_the_retry_after_ms_it_names(vendor: FakeVendor) -> None:
    vendor.script(
        CHAT,
        Reply(429, error(429, "Rate limit reached", "requests").json, {"retry-after-ms": "400"}),
        Reply(json=completion("ok")),
    )
    llm = openai_llm(vendor)

    started = time.monotonic()
    result = await llm.complete(MESSAGES)

    assert result.text == "ok"
    assert len(vendor.calls(CHAT)) == 2
    assert time.monotonic() - started >= 0.4


async def test_retry_after_in_seconds_is_honoured(vendor: FakeVendor) -> None:
    vendor.script(
        CHAT,
        Reply(429, error(429, "slow down", "requests").json, {"Retry-After": "1"}),
        Reply(json=completion("ok")),
    )
    started = time.monotonic()
    assert (await openai_llm(vendor).complete(MESSAGES)).text == "ok"
    assert time.monotonic() - started >= 1.0


async def test_a_retry_after_longer_than_we_wait_gives_up_at_once_with_it(
    vendor: FakeVendor,
) -> None:
    vendor.script(CHAT, Reply(429, error(429, "quota", "tokens").json, {"Retry-After": "120"}))

    with pytest.raises(RateLimited) as caught:
        await openai_llm(vendor).complete(MESSAGES)

    assert caught.value.retry_after == 120
    assert len(vendor.calls(CHAT)) == 1


async def test_500s_are_retried_with_backoff_then_reported_unavailable(
    vendor: FakeVendor,
) -> None:
    server_error = error(500, "The server had an error", "server_error")
    vendor.script(CHAT, server_error, server_error, server_error, Reply(json=completion()))

    with pytest.raises(ProviderUnavailable, match="500"):
        await openai_llm(vendor, provider_max_retries=2).complete(MESSAGES)

    assert len(vendor.calls(CHAT)) == 3  # one try and two retries


async def test_a_500_then_success_answers(vendor: FakeVendor) -> None:
    vendor.script(CHAT, error(503, "overloaded", "server_error"), Reply(json=completion("ok")))
    assert (await openai_llm(vendor).complete(MESSAGES)).text == "ok"


async def test_400_is_a_bad_response_and_not_retried(vendor: FakeVendor) -> None:
    vendor.script(
        CHAT, error(400, "Invalid value for 'temperature'", "invalid_request_error", "bad")
    )

    with pytest.raises(BadResponse, match="Invalid value for 'temperature'"):
        await openai_llm(vendor).complete(MESSAGES)

    assert len(vendor.calls(CHAT)) == 1


async def test_401_is_auth_failed_and_the_key_never_leaks(vendor: FakeVendor, logs: Any) -> None:
    # A hostile vendor echoes the key it was sent, whole and partly masked.
    echoed = f"Incorrect API key provided: {KEY}. Also {KEY[:3]}***{KEY[-12:]}"
    vendor.script(CHAT, error(401, echoed, "invalid_request_error", "invalid_api_key"))

    with pytest.raises(AuthFailed) as caught:
        await openai_llm(vendor).complete(MESSAGES)

    assert len(vendor.calls(CHAT)) == 1
    error_text = f"{caught.value!s} {caught.value!r} {caught.value.__cause__!r}"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert KEY not in error_text
    assert KEY[-12:] not in error_text
    assert KEY not in logs.text
    assert KEY[-12:] not in logs.text


async def test_the_key_never_leaks_into_retry_logs_either(vendor: FakeVendor, logs: Any) -> None:
    echoed = error(500, f"upstream failed for key {KEY}", "server_error")
    vendor.script(CHAT, echoed, echoed, echoed)

    with pytest.raises(ProviderUnavailable) as caught:
        await openai_llm(vendor).complete(MESSAGES)

    assert "retry 1" in logs.text  # the retries were logged...
    assert KEY not in logs.text  # ...without the key
    assert KEY not in str(caught.value)


async def test_a_slow_answer_times_out_and_is_retried(vendor: FakeVendor) -> None:
    slow = Reply(json=completion("late"), delay=1.5)
    vendor.script(CHAT, slow, slow)

    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await openai_llm(vendor, provider_read_timeout=0.3, provider_max_retries=1).complete(
            MESSAGES
        )

    assert len(vendor.calls(CHAT)) == 2
    assert time.monotonic() - started < 1.5 * 2


async def test_an_unreachable_server_is_unavailable() -> None:
    dead = FakeVendor()
    url = dead.url
    dead.stop()
    llm = llm_for(
        llm_provider="openai",
        openai_api_key=SecretStr(KEY),
        openai_base_url=url + "/v1",
        provider_max_retries=1,
    )
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await llm.complete(MESSAGES)


async def test_a_stream_that_dies_midway_raises_after_its_deltas(vendor: FakeVendor) -> None:
    vendor.script(CHAT, Reply(sse=[chunk("Par"), chunk("is"), chunk("!")], drop_after=2))

    received: list[str] = []
    with pytest.raises(ProviderUnavailable):
        await drain(openai_llm(vendor).stream(MESSAGES), received)

    assert received == ["Par", "is"]
    assert len(vendor.calls(CHAT)) == 1  # never re-run once the caller holds part of it


async def test_a_stream_refused_before_its_first_delta_is_retried(vendor: FakeVendor) -> None:
    vendor.script(
        CHAT,
        error(502, "bad gateway", "server_error"),
        Reply(sse=[chunk("ok"), "data: [DONE]\n\n"]),
    )
    assert [d async for d in openai_llm(vendor).stream(MESSAGES)] == ["ok"]


async def test_official_endpoint_uses_max_completion_tokens_and_omits_temperature_for_o_models(
    vendor: FakeVendor,
) -> None:
    # No OPENAI_BASE_URL means api.openai.com; exercise that request shape on the fake by
    # building the same model class the factory builds for it.
    from lorebase.providers.openai import PROVIDER, OpenAIChatModel, openai_client
    from lorebase.providers.resilience import RetryPolicy
    from lorebase.providers.vendor import Connection

    policy = RetryPolicy(max_retries=0)
    client = openai_client(api_key=KEY, base_url=vendor.url + "/v1", policy=policy)
    llm = OpenAIChatModel(Connection(client, policy, PROVIDER, [KEY]), model="o3-mini")
    vendor.script(CHAT, Reply(json=completion()))

    await llm.complete(MESSAGES, max_tokens=64, temperature=0.7)

    body = vendor.calls(CHAT)[0].body
    assert body["max_completion_tokens"] == 64
    assert "max_tokens" not in body
    assert "temperature" not in body


async def test_a_gateway_without_key_gets_a_placeholder_bearer(vendor: FakeVendor) -> None:
    vendor.script("/gateway/v1/chat/completions", Reply(json=completion("via gateway")))
    llm = llm_for(
        llm_provider="openai", openai_base_url=vendor.url + "/gateway/v1", llm_model="qwen2.5"
    )

    assert (await llm.complete(MESSAGES)).text == "via gateway"
    request = vendor.calls("/gateway/v1/chat/completions")[0]
    assert request.headers["authorization"] == "Bearer unused"
    assert request.body["model"] == "qwen2.5"


# --- embeddings -------------------------------------------------------------------------------


def embeddings(vectors: list[list[float]], order: list[int] | None = None) -> dict[str, Any]:
    indexes = order or list(range(len(vectors)))
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vectors[i]} for i in indexes],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }


async def test_embeddings_are_sent_batched_and_come_back_normalised_in_input_order(
    vendor: FakeVendor,
) -> None:
    first, second = [3.0, 4.0] + [0.0] * 1534, [0.0] * 1535 + [2.0]
    vendor.script(EMBED, Reply(json=embeddings([first, second], order=[1, 0])))
    embedder = embedder_for(
        embedding_provider="openai",
        openai_api_key=SecretStr(KEY),
        openai_base_url=vendor.url + "/v1",
    )

    vectors = await embedder.embed_batch(["alpha", "beta"])

    (request,) = vendor.calls(EMBED)
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {
        "model": "text-embedding-3-small",
        "input": ["alpha", "beta"],
        "encoding_format": "float",
    }
    assert embedder.dimension == 1536
    assert embedder.model_id == "text-embedding-3-small"
    assert vectors[0][:2] == pytest.approx([0.6, 0.8])
    assert vectors[1][-1] == pytest.approx(1.0)
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-6) for v in vectors)


async def test_shortened_embeddings_ask_for_dimensions_and_name_their_own_space(
    vendor: FakeVendor,
) -> None:
    vendor.script(EMBED, Reply(json=embeddings([[1.0] * 512])))
    embedder = embedder_for(
        embedding_provider="openai",
        openai_api_key=SecretStr(KEY),
        openai_base_url=vendor.url + "/v1",
        embedding_dimensions=512,
    )

    (vector,) = await embedder.embed_batch(["x"])

    assert vendor.calls(EMBED)[0].body["dimensions"] == 512
    assert embedder.model_id == "text-embedding-3-small@512"
    assert len(vector) == 512


async def test_embeddings_of_the_wrong_dimension_are_a_bad_response(vendor: FakeVendor) -> None:
    vendor.script(EMBED, Reply(json=embeddings([[1.0] * 10])))
    embedder = embedder_for(
        embedding_provider="openai",
        openai_api_key=SecretStr(KEY),
        openai_base_url=vendor.url + "/v1",
    )
    with pytest.raises(BadResponse, match="dimension"):
        await embedder.embed_batch(["x"])


@pytest.mark.parametrize(
    "body",
    [
        {"object": "list"},  # no data
        {"data": [{"embedding": [1.0] * 1536}]},  # no index
        {"data": [{"index": 0, "embedding": "AAAAAA=="}]},  # base64 despite encoding_format
        [1, 2, 3],
    ],
)
async def test_unreadable_embeddings_are_a_bad_response(vendor: FakeVendor, body: Any) -> None:
    vendor.script(EMBED, Reply(json=body))
    embedder = embedder_for(
        embedding_provider="openai",
        openai_api_key=SecretStr(KEY),
        openai_base_url=vendor.url + "/v1",
    )
    with pytest.raises(BadResponse, match="openai sent embeddings"):
        await embedder.embed_batch(["x"])
    assert len(vendor.calls(EMBED)) == 1, "a bad response is not retried"


async def test_embedding_rate_limits_are_retried(vendor: FakeVendor) -> None:
    vendor.script(
        EMBED,
        Reply(429, error(429, "rpm", "requests").json, {"retry-after-ms": "50"}),
        Reply(json=embeddings([[1.0] + [0.0] * 1535])),
    )
    embedder = embedder_for(
        embedding_provider="openai",
        openai_api_key=SecretStr(KEY),
        openai_base_url=vendor.url + "/v1",
    )
    assert len(await embedder.embed_batch(["x"])) == 1
    assert len(vendor.calls(EMBED)) == 2


def openai_embedder(url: str, **values: Any) -> Any:
    values.setdefault("openai_api_key", SecretStr(KEY))
    return embedder_for(embedding_provider="openai", openai_base_url=url + "/v1", **values)


async def test_embedding_500s_are_retried_then_unavailable_and_a_500_then_success_embeds(
    vendor: FakeVendor,
) -> None:
    server_error = error(500, f"upstream failed for key {KEY}", "server_error")
    vendor.script(EMBED, server_error, server_error, server_error)
    with pytest.raises(ProviderUnavailable, match="500") as caught:
        await openai_embedder(vendor.url, provider_max_retries=2).embed_batch(["x"])
    assert len(vendor.calls(EMBED)) == 3
    assert KEY not in str(caught.value)

    vendor.script(
        EMBED, error(503, "overloaded", "server_error"), Reply(json=embeddings([[1.0] * 1536]))
    )
    assert len(await openai_embedder(vendor.url).embed_batch(["x"])) == 1


async def test_a_refused_embedding_key_is_auth_failed_and_never_leaks(
    vendor: FakeVendor, logs: Any
) -> None:
    vendor.script(EMBED, error(401, f"Incorrect API key provided: {KEY}", "invalid_request_error"))
    with pytest.raises(AuthFailed) as caught:
        await openai_embedder(vendor.url).embed_batch(["x"])
    assert len(vendor.calls(EMBED)) == 1
    assert caught.value.__cause__ is None
    assert KEY not in f"{caught.value!s} {caught.value!r}"
    assert KEY not in logs.text


async def test_a_bad_embedding_request_is_a_bad_response_naming_the_vendors_message(
    vendor: FakeVendor,
) -> None:
    vendor.script(EMBED, error(400, "input is too long", "invalid_request_error"))
    with pytest.raises(BadResponse, match="input is too long"):
        await openai_embedder(vendor.url).embed_batch(["x"])
    assert len(vendor.calls(EMBED)) == 1


async def test_a_slow_embedding_times_out_and_is_retried(vendor: FakeVendor) -> None:
    slow = Reply(json=embeddings([[1.0] * 1536]), delay=1.5)
    vendor.script(EMBED, slow, slow)
    embedder = openai_embedder(vendor.url, provider_read_timeout=0.3, provider_max_retries=1)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await embedder.embed_batch(["x"])
    assert len(vendor.calls(EMBED)) == 2
    assert time.monotonic() - started < 1.5 * 2


async def test_an_unreachable_embedding_server_is_unavailable() -> None:
    dead = FakeVendor()
    url = dead.url
    dead.stop()
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await openai_embedder(url, provider_max_retries=1).embed_batch(["x"])
