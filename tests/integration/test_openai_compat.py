"""`/openai/v1` with the official `openai` SDK over the real app and the default extractive
answerer: the models are the readable projects, answers carry `[n]` markers and verified
citations (JSON and streamed), and every refusal is an OpenAI-shaped error the SDK raises as
its typed exception."""

from __future__ import annotations

import dataclasses
import re
import uuid
from typing import Any

import httpx
import openai
import pytest

from lorebase.context import AppContext
from lorebase.main import create_app
from tests.factories import create_project, register_user
from tests.integration.openai_helpers import all_text, api_key, sdk, seeded_project

QUESTION = "what does the break statement terminate?"


def _error(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    assert exc.response.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = body["error"]
    return error


async def test_models_are_the_projects_the_caller_can_read(
    app: Any, client: httpx.AsyncClient
) -> None:
    ada, bob = await register_user(client), await register_user(client)
    first = await create_project(client, ada.headers, description="the first")
    second = await create_project(client, ada.headers)
    hidden = await create_project(client, bob.headers)
    bound = await api_key(client, ada, project_id=second["id"])
    async with sdk(app, await api_key(client, ada)) as ai:
        models = await ai.models.list()
        one = await ai.models.retrieve(first["id"])
        with pytest.raises(openai.NotFoundError) as missing:
            await ai.models.retrieve(hidden["id"])
    async with sdk(app, bound) as ai:
        bound_models = await ai.models.list()
    cards = {m.id: m for m in models.data}
    assert set(cards) == {first["id"], second["id"]}
    card = cards[first["id"]]
    assert (card.object, card.owned_by) == ("model", "lorebase")
    assert card.model_dump()["name"] == first["name"]
    assert card.model_dump()["description"] == "the first"
    assert card.created > 1_700_000_000
    assert one.id == first["id"]
    assert _error(missing.value)["code"] == "model_not_found"
    assert [m.id for m in bound_models.data] == [second["id"]]


async def test_chat_completion_is_a_cited_answer(
    app: Any, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register_user(client)
    project = await seeded_project(client, ctx, user)
    async with sdk(app, await api_key(client, user)) as ai:
        answer = await ai.chat.completions.create(
            model=project["id"],
            messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "what is a default value?"},
                {"role": "assistant", "content": "Evaluated once [1]."},
                {"role": "user", "content": QUESTION},
            ],
            top_p=0.5,  # an OpenAI parameter Lorebase does not use: ignored, like OpenAI does
            extra_body={"frobnicate": True},  # unknown: ignored too
        )
    content = answer.choices[0].message.content or ""
    extra = answer.model_extra or {}
    citations, info = extra["citations"], extra["lorebase"]
    assert answer.object == "chat.completion"
    assert answer.model == project["id"]
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.role == "assistant"
    assert "loop" in content
    assert citations, content
    for citation in citations:
        assert f"[{citation['number']}]" in content
        assert citation["quote"] in all_text()
        assert citation["document_name"] in {"loops", "scopes", "defaults", "zoo"}
        assert uuid.UUID(citation["document_id"])
        assert uuid.UUID(citation["result_id"])
        assert citation["version"]
    assert any(c["document_name"] == "loops" for c in citations)
    # The extractive answerer has no model to condense with: the last question, as written.
    assert info["question"] == QUESTION
    usage = answer.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert answer.id == f"chatcmpl-{uuid.UUID(info['query_id']).hex}"


async def test_model_may_be_named_when_the_name_is_unambiguous(
    app: Any, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register_user(client)
    name = f"handbook-{uuid.uuid4().hex[:6]}"
    project = await seeded_project(client, ctx, user, name=name)
    twin = f"twin-{uuid.uuid4().hex[:6]}"
    await create_project(client, user.headers, name=twin)
    await create_project(client, user.headers, name=twin)
    ask = [{"role": "user", "content": QUESTION}]
    async with sdk(app, await api_key(client, user)) as ai:
        by_name = await ai.chat.completions.create(model=name, messages=ask)  # type: ignore
        with pytest.raises(openai.BadRequestError) as ambiguous:
            await ai.chat.completions.create(model=twin, messages=ask)  # type: ignore
        with pytest.raises(openai.NotFoundError) as unknown:
            await ai.chat.completions.create(model="no-such-project", messages=ask)  # type: ignore
        with pytest.raises(openai.NotFoundError) as unknown_id:
            await ai.chat.completions.create(model=str(uuid.uuid4()), messages=ask)  # type: ignore
    assert (by_name.model_extra or {})["citations"]
    assert project["id"]
    assert _error(ambiguous.value)["code"] == "model_ambiguous"
    for refusal in (unknown.value, unknown_id.value):
        error = _error(refusal)
        assert (error["type"], error["param"], error["code"]) == (
            "invalid_request_error",
            "model",
            "model_not_found",
        )


async def test_streamed_answer_ends_with_citations_usage_and_done(
    app: Any, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register_user(client)
    project = await seeded_project(client, ctx, user)
    async with sdk(app, await api_key(client, user)) as ai:
        stream = await ai.chat.completions.create(
            model=project["id"],
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        # The same question again: the answer cache serves it, and no model tokens are spent.
        whole = await ai.chat.completions.create(
            model=project["id"], messages=[{"role": "user", "content": QUESTION}]
        )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    last, usage_chunk = chunks[-2], chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-2])
    citations = last.model_dump()["citations"]
    assert citations == (whole.model_extra or {})["citations"]
    assert all(f"[{c['number']}]" in text for c in citations)
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens > 0
    assert last.model_dump()["lorebase"]["cached"] is False
    assert (whole.model_extra or {})["lorebase"]["cached"] is True
    assert whole.usage is not None
    assert whole.usage.total_tokens == 0


async def test_streamed_answer_over_raw_http_is_openai_sse(
    app: Any, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register_user(client)
    project = await seeded_project(client, ctx, user)
    body = {"model": project["id"], "messages": [{"role": "user", "content": QUESTION}]}
    headers = {"Authorization": f"Bearer {await api_key(client, user)}"}
    response = await client.post(
        "/openai/v1/chat/completions", json={**body, "stream": True}, headers=headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in re.split(r"\r?\n\r?\n", response.text) if e.strip()]
    assert all(e.startswith("data: ") for e in events), events
    assert events[-1] == "data: [DONE]"
    assert "usage" not in events[-2]  # no usage chunk unless stream_options asks for it


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "system", "content": "no question here"}], None),
        ([{"role": "user", "content": "   "}], None),
        ([{"role": "wizard", "content": "hi"}], "messages.0.role"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], None),
        ([{"role": "user"}], None),
        ([{"role": "user", "content": "x" * 4001}], None),
    ],
)
async def test_malformed_requests_are_openai_400s(
    app: Any, client: httpx.AsyncClient, messages: list[Any], param: str | None
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    async with sdk(app, await api_key(client, user)) as ai:
        with pytest.raises(openai.BadRequestError) as refused:
            await ai.chat.completions.create(model=project["id"], messages=messages)
    error = _error(refused.value)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


async def test_bad_parameters_and_broken_json_are_400s(app: Any, client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    ask = [{"role": "user", "content": QUESTION}]
    async with sdk(app, await api_key(client, user)) as ai:
        with pytest.raises(openai.BadRequestError) as hot:
            await ai.chat.completions.create(model=project["id"], messages=ask, temperature=3)
        with pytest.raises(openai.BadRequestError) as many:
            await ai.chat.completions.create(model=project["id"], messages=ask, n=2)
    assert _error(hot.value)["param"] == "temperature"
    assert _error(many.value)["param"] == "n"
    broken = await client.post(
        "/openai/v1/chat/completions",
        content=b'{"model": ',
        headers={**user.headers, "content-type": "application/json"},
    )
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["error"]["message"]


async def test_credentials_are_checked_like_the_rest_api(
    app: Any, client: httpx.AsyncClient
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    ask = [{"role": "user", "content": QUESTION}]
    async with sdk(app, "lb_not-a-real-key") as ai:
        with pytest.raises(openai.AuthenticationError) as listing:
            await ai.models.list()
        with pytest.raises(openai.AuthenticationError) as asking:
            await ai.chat.completions.create(model=project["id"], messages=ask)
    for refused in (listing.value, asking.value):
        assert _error(refused)["type"] == "invalid_request_error"
        assert refused.response.headers["www-authenticate"] == "Bearer"
    # A signed-in user's access token is a bearer credential too.
    async with sdk(app, user.headers["Authorization"].split()[1]) as ai:
        assert [m.id for m in (await ai.models.list()).data] == [project["id"]]


async def test_unknown_openai_routes_answer_in_openai_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/openai/v1/embeddings")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    # The REST API keeps problem+json.
    rest = await client.get("/api/v1/nothing-here")
    assert rest.headers["content-type"].startswith("application/problem+json")


async def test_chat_completions_share_the_query_rate_limit(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    settings = ctx.settings.model_copy(update={"rate_limit_query": "2/minute"})
    limited = create_app(context=dataclasses.replace(ctx, settings=settings))
    user = await register_user(client)
    project = await create_project(client, user.headers)
    key = await api_key(client, user)
    ask = [{"role": "user", "content": QUESTION}]
    async with limited.router.lifespan_context(limited), sdk(limited, key) as ai:
        for _ in range(2):
            await ai.chat.completions.create(model=project["id"], messages=ask)
        with pytest.raises(openai.RateLimitError) as limited_out:
            await ai.chat.completions.create(model=project["id"], messages=ask)
    error = _error(limited_out.value)
    assert error["type"] == "rate_limit_error"
    assert int(limited_out.value.response.headers["retry-after"]) >= 1


async def test_openapi_documents_the_openai_routes(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    chat = spec["paths"]["/openai/v1/chat/completions"]["post"]
    assert chat["tags"] == ["openai"]
    assert "text/event-stream" in chat["responses"]["200"]["content"]
    error = chat["responses"]["400"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/OpenAIError"}
    assert "422" not in chat["responses"]
    assert spec["paths"]["/openai/v1/models"]["get"]["tags"] == ["openai"]
