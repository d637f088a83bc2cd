"""Anthropic contract: the Messages API (JSON and its SSE event stream), error bodies and
headers as documented, through the official SDK and our provider built by the registry."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import SecretStr

from lorebase.providers.base import AuthFailed, BadResponse, Message, ProviderUnavailable
from tests.contract.conftest import KEY, drain, llm_for
from tests.contract.fake_vendor import FakeVendor, Reply

MESSAGES_PATH = "/v1/messages"
MESSAGES = [
    Message("system", "Answer from the sources."),
    Message("user", "Capital of France?"),
]


def message(text: str = "Paris [1]") -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 17, "output_tokens": 4},
    }


def event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def stream_events(*texts: str) -> list[Any]:
    start = dict(message(""), content=[], stop_reason=None)
    events = [
        event("message_start", {"type": "message_start", "message": start}),
        event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        event("ping", {"type": "ping"}),
    ]
    events += [
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
        )
        for t in texts
    ]
    events += [
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 4},
            },
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    return events


def error(status: int, kind: str, text: str, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status, {"type": "error", "error": {"type": kind, "message": text}}, headers or {})


def claude(vendor: FakeVendor, **values: Any) -> Any:
    return llm_for(
        llm_provider="anthropic",
        anthropic_api_key=SecretStr(KEY),
        anthropic_base_url=vendor.url,
        **values,
    )


async def test_system_goes_top_level_and_the_key_is_sent(vendor: FakeVendor) -> None:
    vendor.script(MESSAGES_PATH, Reply(json=message()))

    result = await claude(vendor, llm_model="claude-haiku-4-5").complete(
        MESSAGES, max_tokens=100, temperature=0.0, stop=["END"]
    )

    (request,) = vendor.calls(MESSAGES_PATH)
    # The SDK sends the key as `x-api-key` or, in recent versions, as a bearer token.
    assert KEY in (request.headers.get("x-api-key"), request.headers.get("authorization", "")[7:])
    assert "anthropic-version" in request.headers
    assert request.body["model"] == "claude-haiku-4-5"
    assert "temperature" not in request.body
    assert request.body["system"] == "Answer from the sources."
    assert request.body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert request.body["max_tokens"] == 100
    assert request.body["stop_sequences"] == ["END"]
    assert result.text == "Paris [1]"
    assert result.model_id == "claude-3-5-haiku-20241022"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (17, 4)


async def test_turns_are_merged_to_alternate_starting_with_user(vendor: FakeVendor) -> None:
    vendor.script(MESSAGES_PATH, Reply(json=message()))
    await claude(vendor).complete(
        [
            Message("system", "a"),
            Message("assistant", "earlier answer"),
            Message("user", "one"),
            Message("user", "two"),
            Message("system", "b"),
        ]
    )
    body = vendor.calls(MESSAGES_PATH)[0].body
    assert body["system"] == "a\n\nb"
    assert [turn["role"] for turn in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][2]["content"] == "one\n\ntwo"


async def test_stream_reads_text_deltas_from_the_event_stream(vendor: FakeVendor) -> None:
    vendor.script(MESSAGES_PATH, Reply(sse=stream_events("Par", "is", " [1]")))

    deltas = [d async for d in claude(vendor).stream(MESSAGES)]

    assert deltas == ["Par", "is", " [1]"]
    assert vendor.calls(MESSAGES_PATH)[0].body["stream"] is True


async def test_overloaded_529_is_retried(vendor: FakeVendor) -> None:
    vendor.script(
        MESSAGES_PATH, error(529, "overloaded_error", "Overloaded"), Reply(json=message("ok"))
    )
    assert (await claude(vendor).complete(MESSAGES)).text == "ok"
    assert len(vendor.calls(MESSAGES_PATH)) == 2


async def test_429_honours_retry_after(vendor: FakeVendor) -> None:
    vendor.script(
        MESSAGES_PATH,
        error(429, "rate_limit_error", "Number of requests exceeded", {"retry-after": "1"}),
        Reply(json=message("ok")),
    )
    started = time.monotonic()
    assert (await claude(vendor).complete(MESSAGES)).text == "ok"
    assert time.monotonic() - started >= 1.0


async def test_400_is_a_bad_response_naming_the_vendor_message(vendor: FakeVendor) -> None:
    vendor.script(
        MESSAGES_PATH, error(400, "invalid_request_error", "max_tokens: must be positive")
    )
    with pytest.raises(BadResponse, match="max_tokens: must be positive"):
        await claude(vendor).complete(MESSAGES)
    assert len(vendor.calls(MESSAGES_PATH)) == 1


async def test_401_is_auth_failed_without_the_key(vendor: FakeVendor, logs: Any) -> None:
    vendor.script(MESSAGES_PATH, error(401, "authentication_error", f"invalid x-api-key {KEY}"))

    with pytest.raises(AuthFailed) as caught:
        await claude(vendor).complete(MESSAGES)

    assert KEY not in f"{caught.value!s} {caught.value!r}"
    assert caught.value.__cause__ is None
    assert KEY not in logs.text


async def test_slow_answers_time_out_as_unavailable(vendor: FakeVendor) -> None:
    slow = Reply(json=message(), delay=1.2)
    vendor.script(MESSAGES_PATH, slow, slow)
    with pytest.raises(ProviderUnavailable, match="timed out"):
        await claude(vendor, provider_read_timeout=0.3, provider_max_retries=1).complete(MESSAGES)
    assert len(vendor.calls(MESSAGES_PATH)) == 2


async def test_a_stream_cut_mid_answer_raises(vendor: FakeVendor) -> None:
    vendor.script(MESSAGES_PATH, Reply(sse=stream_events("Par", "is"), drop_after=4))
    received: list[str] = []
    with pytest.raises(ProviderUnavailable):
        await drain(claude(vendor).stream(MESSAGES), received)
    assert received == ["Par"]
