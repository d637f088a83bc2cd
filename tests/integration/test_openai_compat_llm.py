"""`/openai/v1` with a generative chat model (a loopback server speaking OpenAI's protocol,
built by the real registry): follow-ups are condensed before retrieval, `temperature` and
`max_tokens` reach the model, answers stream with verified citations, and a model that is down
is an OpenAI-shaped 503, or an error chunk then `[DONE]` once the stream has started."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import openai
import pytest

from lorebase.context import AppContext
from lorebase.main import create_app
from tests.contract.fake_vendor import FakeVendor, Reply
from tests.contract.test_openai import chunk, completion
from tests.factories import register_user
from tests.integration.openai_helpers import api_key, sdk, seeded_project
from tests.integration.test_rag_llm import _llm_context, _number_of

CHAT = "/v1/chat/completions"
STANDALONE = "What does the break statement terminate?"
CONVERSATION = [
    {"role": "user", "content": "Tell me about the break statement."},
    {"role": "assistant", "content": "It is a statement used in loops [1]."},
    {"role": "user", "content": "and what does it terminate?"},
]
QUOTE = "The break statement terminates the nearest enclosing loop"


def _reply(path: str, body: Any) -> Reply:
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    if "standalone question" in system:
        return Reply(json=completion(STANDALONE))
    n = _number_of(user, "break statement")
    text = f'"{QUOTE}" [{n}].'
    if body.get("stream"):
        pieces = [text[:15], text[15:40], text[40:]]
        return Reply(sse=[chunk(None), *[chunk(p) for p in pieces], chunk(None, "stop")])
    return Reply(json=completion(text))


def _down(path: str, body: Any) -> Reply:
    return Reply(status=503, json={"error": {"message": "overloaded", "type": "server_error"}})


@pytest.fixture
def vendor() -> Iterator[FakeVendor]:
    fake = FakeVendor(default=_reply)
    yield fake
    fake.stop()


@asynccontextmanager
async def _llm_app(ctx: AppContext, vendor: FakeVendor) -> AsyncIterator[dict[str, Any]]:
    """The app with the vendor as its chat model, a user, a seeded project and an API key."""
    context = _llm_context(ctx, vendor)
    app = create_app(context=context)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            user = await register_user(http)
            project = await seeded_project(http, ctx, user)
            key = await api_key(http, user)
            yield {"app": app, "http": http, "key": key, "model": project["id"]}


async def test_follow_up_is_condensed_then_answered_with_citations(
    ctx: AppContext, vendor: FakeVendor
) -> None:
    async with _llm_app(ctx, vendor) as kb, sdk(kb["app"], kb["key"]) as ai:
        answer = await ai.chat.completions.create(
            model=kb["model"], messages=CONVERSATION, temperature=0.3, max_tokens=77
        )
    condense, synthesis = vendor.calls(CHAT)
    transcript = condense.body["messages"][-1]["content"]
    assert "User: Tell me about the break statement." in transcript
    assert "Assistant: It is a statement used in loops ." in transcript  # markers stripped
    assert transcript.endswith("Last question: and what does it terminate?")
    assert synthesis.body["messages"][-1]["content"].endswith(f"Question: {STANDALONE}")
    assert synthesis.body["temperature"] == 0.3
    assert synthesis.body["max_tokens"] == 77  # a gateway (OPENAI_BASE_URL) gets `max_tokens`
    extra = answer.model_extra or {}
    assert extra["lorebase"]["question"] == STANDALONE
    (citation,) = extra["citations"]
    assert citation["quote"] == QUOTE
    assert citation["document_name"] == "loops"
    assert answer.choices[0].message.content == f'"{QUOTE}" [{citation["number"]}].'
    usage = answer.usage
    assert usage is not None
    # The condensing call counts too: more than the answer's prompt alone.
    assert usage.prompt_tokens > len(synthesis.body["messages"][-1]["content"]) // 4


async def test_streamed_generative_answer_keeps_its_citations(
    ctx: AppContext, vendor: FakeVendor
) -> None:
    async with _llm_app(ctx, vendor) as kb, sdk(kb["app"], kb["key"]) as ai:
        stream = await ai.chat.completions.create(
            model=kb["model"], messages=[{"role": "user", "content": STANDALONE}], stream=True
        )
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    (citation,) = chunks[-1].model_dump()["citations"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len(chunks) >= 5  # role, three deltas as the model wrote them, the last chunk
    assert text == f'"{QUOTE}" [{citation["number"]}].'
    assert citation["quote"] == QUOTE
    assert vendor.calls(CHAT)[0].body["stream"] is True


async def test_model_down_is_an_openai_503(ctx: AppContext, vendor: FakeVendor) -> None:
    vendor.default = _down
    ask = [{"role": "user", "content": STANDALONE}]
    async with _llm_app(ctx, vendor) as kb, sdk(kb["app"], kb["key"]) as ai:
        with pytest.raises(openai.InternalServerError) as answering:
            await ai.chat.completions.create(model=kb["model"], messages=ask)
        with pytest.raises(openai.InternalServerError) as condensing:
            await ai.chat.completions.create(model=kb["model"], messages=CONVERSATION, stream=True)
        vendor.default = _reply  # back up: the failure was not cached
        again = await ai.chat.completions.create(model=kb["model"], messages=ask)
    for refused in (answering.value, condensing.value):
        assert refused.status_code == 503
        error = refused.response.json()["error"]
        assert (error["type"], error["code"]) == ("server_error", "provider_unavailable")
        assert int(refused.response.headers["retry-after"]) >= 1
    assert (again.model_extra or {})["citations"]


async def _drain(stream: AsyncIterator[Any], into: list[Any]) -> None:
    async for item in stream:
        into.append(item)


async def test_model_down_mid_stream_is_an_error_chunk_then_done(
    ctx: AppContext, vendor: FakeVendor
) -> None:
    vendor.default = _down
    ask = [{"role": "user", "content": STANDALONE}]
    async with _llm_app(ctx, vendor) as kb:
        async with sdk(kb["app"], kb["key"]) as ai:
            stream = await ai.chat.completions.create(model=kb["model"], messages=ask, stream=True)
            seen: list[Any] = []
            with pytest.raises(openai.APIError) as failed:
                await _drain(stream, seen)
        raw = await kb["http"].post(
            "/openai/v1/chat/completions",
            json={"model": kb["model"], "messages": ask, "stream": True},
            headers={"Authorization": f"Bearer {kb['key']}"},
        )
    # The search ran and the role went out before the model was asked: then the error.
    assert [c.choices[0].delta.role for c in seen] == ["assistant"]
    assert isinstance(failed.value.body, dict)
    assert failed.value.body["code"] == "provider_unavailable"
    events = [e for e in re.split(r"\r?\n\r?\n", raw.text) if e.strip()]
    assert raw.status_code == 200
    assert '"error"' in events[-2]
    assert events[-1] == "data: [DONE]"
