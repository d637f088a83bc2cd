"""The generative-LLM paths of /rag/query and contextual embeddings, against a loopback
server that speaks OpenAI's Chat Completions protocol (JSON and SSE), with the chat model
built by the real registry: listwise re-ranking (and its malformed-output fallback),
synthesis with verified citations, streaming, and the model going down."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from lorebase.context import AppContext
from lorebase.knowledge.context import contextualize_chunks
from lorebase.main import create_app
from lorebase.providers.registry import build_llm
from tests.contract.fake_vendor import FakeVendor, Reply
from tests.contract.test_openai import chunk, completion
from tests.factories import create_project, register_user
from tests.integration.test_ingest_upload import drain
from tests.integration.test_rag_api import DOCS, _events
from tests.retrieval_seed import seed_document

CHAT = "/v1/chat/completions"
QUERY = "/api/v1/rag/query"
KEY = "sk-test-" + "r" * 32


def _prompt(body: dict[str, Any]) -> tuple[str, str]:
    messages = body["messages"]
    return messages[0]["content"], messages[-1]["content"]


def _number_of(user_prompt: str, needle: str) -> int:
    """The source number whose text contains `needle` in a numbered-sources prompt."""
    current = 0
    for line in user_prompt.splitlines():
        match = re.match(r"^\[(\d+)\] ", line)
        if match:
            current = int(match.group(1))
        if needle in line and current:
            return current
    raise AssertionError(f"{needle!r} not in prompt")


def _vendor(reply_for: Callable[[str, str, dict[str, Any]], Reply]) -> FakeVendor:
    def default(path: str, body: Any) -> Reply:
        system, user = _prompt(body)
        return reply_for(system, user, body)

    return FakeVendor(default=default)


@pytest.fixture
def vendors() -> Any:
    started: list[FakeVendor] = []

    def make(reply_for: Callable[[str, str, dict[str, Any]], Reply]) -> FakeVendor:
        fake = _vendor(reply_for)
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


def _llm_context(ctx: AppContext, vendor: FakeVendor, **settings: Any) -> AppContext:
    values = {
        "llm_provider": "openai",
        "llm_model": "gpt-4o-mini",
        "openai_api_key": SecretStr(KEY),
        "openai_base_url": vendor.url + "/v1",
        "llm_fallbacks": [],
        "provider_max_retries": 0,
        "provider_read_timeout": 5.0,
        **settings,
    }
    variant_settings = ctx.settings.model_copy(update=values)
    llm = build_llm(variant_settings, ctx.registry)
    return dataclasses.replace(ctx, settings=variant_settings, llm=llm, rerankers={})


async def _client(context: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(context=context)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def _seeded(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, Any]:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    for name, chunks in DOCS.items():
        await seed_document(ctx, project_id=uuid.UUID(project["id"]), name=name, chunks=chunks)
    return {"headers": user.headers, "project_id": project["id"]}


async def _ask(client: httpx.AsyncClient, kb: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await client.post(
        QUERY, json={"project_id": kb["project_id"], **body}, headers=kb["headers"]
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_listwise_llm_reranking_follows_the_models_order(
    ctx: AppContext, vendors: Any
) -> None:
    def reply(system: str, user: str, body: dict[str, Any]) -> Reply:
        assert "Rank the numbered sources" in system
        zebra = _number_of(user, "Zebras")
        others = sorted({int(n) for n in re.findall(r"^\[(\d+)\]", user, re.M)} - {zebra})
        ranking = " > ".join(f"[{n}]" for n in [zebra, *others])
        return Reply(json=completion(ranking))

    vendor = vendors(reply)
    context = _llm_context(ctx, vendor)
    async for client in _client(context):
        kb = await _seeded(client, ctx)
        query = {"query_text": "which statement ends a loop", "top_k": 4}
        plain = await _ask(client, kb, **query, use_hybrid_search=True)
        ranked = await _ask(client, kb, **query, use_hybrid_search=True, use_re_ranking=True)
    assert plain["results"][0]["document_name"] != "zoo"
    assert ranked["results"][0]["document_name"] == "zoo"
    assert ranked["warnings"] == []
    scores = [r["rerank_score"] for r in ranked["results"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == 1.0
    (request,) = vendor.calls(CHAT)
    assert request.headers["authorization"] == f"Bearer {KEY}"


async def test_malformed_llm_ranking_keeps_order_with_a_warning(
    ctx: AppContext, vendors: Any
) -> None:
    vendor = vendors(lambda s, u, b: Reply(json=completion("They all look relevant to me!")))
    context = _llm_context(ctx, vendor)
    async for client in _client(context):
        kb = await _seeded(client, ctx)
        query = {"query_text": "which statement ends a loop", "top_k": 4}
        plain = await _ask(client, kb, **query, use_hybrid_search=True)
        ranked = await _ask(client, kb, **query, use_hybrid_search=True, use_re_ranking=True)
    assert [r["id"] for r in ranked["results"]] == [r["id"] for r in plain["results"]]
    assert any("ranking named no valid source" in w for w in ranked["warnings"])
    assert all(r["rerank_score"] is None for r in ranked["results"])


def _answer_reply(system: str, user: str, body: dict[str, Any]) -> Reply:
    assert "Answer the question using only the numbered sources" in system
    n = _number_of(user, "break statement")
    text = (
        f'Use break: "The break statement terminates the nearest enclosing loop" [{n}]. '
        "Loops were invented in 1843 by Ada Lovelace [1]."
    )
    if body.get("stream"):
        pieces = [text[:20], text[20:60], text[60:]]
        return Reply(
            sse=[chunk(None), *[chunk(p) for p in pieces], chunk(None, "stop"), "data: [DONE]\n\n"]
        )
    return Reply(json=completion(text))


async def test_generative_answer_keeps_only_verified_citations(
    ctx: AppContext, vendors: Any
) -> None:
    vendor = vendors(_answer_reply)
    context = _llm_context(ctx, vendor)
    async for client in _client(context):
        kb = await _seeded(client, ctx)
        body = await _ask(
            client, kb, query_text="how do I stop a loop early?", top_k=4, use_agentic_rag=True
        )
    assert body["synthesized_answer"].startswith("Use break:")
    assert len(body["citations"]) == 1
    citation = body["citations"][0]
    cited = next(r for r in body["results"] if r["id"] == citation["result_id"])
    assert citation["quote"] == "The break statement terminates the nearest enclosing loop"
    assert citation["quote"] in cited["chunk_text"]
    assert any("1 citation(s) dropped" in w for w in body["warnings"])
    # The prompt is the providers' numbered-sources format, with the passages in order.
    (request,) = vendor.calls(CHAT)
    user = request.body["messages"][-1]["content"]
    assert user.startswith("Sources:\n[1] ")
    assert user.rstrip().endswith("Question: how do I stop a loop early?")


async def test_generative_answer_streams_deltas_then_checked_citations(
    ctx: AppContext, vendors: Any
) -> None:
    vendor = vendors(_answer_reply)
    context = _llm_context(ctx, vendor)
    async for client in _client(context):
        kb = await _seeded(client, ctx)
        response = await client.post(
            QUERY,
            json={
                "project_id": kb["project_id"],
                "query_text": "how do I stop a loop early?",
                "top_k": 4,
                "use_agentic_rag": True,
            },
            headers={**kb["headers"], "Accept": "text/event-stream"},
        )
    events = _events(response.text)
    names = [name for name, _ in events]
    assert names == ["results", "delta", "delta", "delta", "citations", "done"]
    text = "".join(data["text"] for name, data in events if name == "delta")
    assert text == events[-1][1]["synthesized_answer"]
    assert [c["quote"] for c in events[-2][1]["citations"]] == [
        "The break statement terminates the nearest enclosing loop"
    ]


async def test_a_dead_chat_model_degrades_to_results_and_is_not_cached(
    ctx: AppContext, vendors: Any
) -> None:
    vendor = vendors(
        lambda s, u, b: Reply(503, {"error": {"message": "overloaded", "type": "server_error"}})
    )
    context = _llm_context(ctx, vendor)
    async for client in _client(context):
        kb = await _seeded(client, ctx)
        first = await _ask(client, kb, query_text="loops", top_k=2, use_agentic_rag=True)
        second = await _ask(client, kb, query_text="loops", top_k=2, use_agentic_rag=True)
        streamed = await client.post(
            QUERY,
            json={"project_id": kb["project_id"], "query_text": "loops", "use_agentic_rag": True},
            headers={**kb["headers"], "Accept": "text/event-stream"},
        )
    assert len(first["results"]) == 2
    assert first["synthesized_answer"] is None
    assert any("chat model is unavailable" in w for w in first["warnings"])
    assert KEY not in json.dumps(first)
    assert second["cached"] is False
    events = _events(streamed.text)
    assert [name for name, _ in events] == ["results", "error"]
    assert events[-1][1]["status"] == 503


async def test_contextual_embeddings_are_written_cached_and_fall_back(
    ctx: AppContext, vendors: Any
) -> None:
    def reply(system: str, user: str, body: dict[str, Any]) -> Reply:
        assert "situate chunks" in system
        numbers = re.findall(r"^\[(\d+)\]", user, re.M)
        return Reply(json=completion("\n".join(f"[{n}] Context for chunk {n}." for n in numbers)))

    vendor = vendors(reply)
    context = _llm_context(ctx, vendor)
    document = f"Guide {uuid.uuid4()}\n\n" + "\n\n".join(c for cs in DOCS.values() for c in cs)
    chunks = [c for cs in DOCS.values() for c in cs]
    first = await contextualize_chunks(
        db=ctx.db, llm=context.llm, document_text=document, chunks=chunks, batch_size=4
    )
    assert [m["context"] for m in first] == [
        f"Context for chunk {i % 4 + 1}." for i in range(len(chunks))
    ]
    assert len(vendor.calls(CHAT)) == 2  # 6 chunks in batches of 4
    again = await contextualize_chunks(
        db=ctx.db, llm=context.llm, document_text=document, chunks=chunks, batch_size=4
    )
    assert again == first
    assert len(vendor.calls(CHAT)) == 2  # all from the chunk_contexts cache

    dead = vendors(lambda s, u, b: Reply(503, {"error": {"message": "down", "type": "x"}}))
    down = _llm_context(ctx, dead)
    fallback = await contextualize_chunks(
        db=ctx.db, llm=down.llm, document_text=document + " v2", chunks=chunks, batch_size=4
    )
    assert all(m["contextualized"] is False for m in fallback)
    assert all("unavailable" in m["context_fallback"] for m in fallback)
    assert len(dead.calls(CHAT)) == 1  # a model that is down is not asked again

    plain = await contextualize_chunks(
        db=ctx.db, llm=ctx.llm, document_text=document, chunks=chunks[:1]
    )
    assert plain == [
        {"contextualized": False, "context_fallback": "no generative chat model is configured"}
    ]


async def test_contextual_embeddings_project_setting_goes_through_ingestion(
    ctx: AppContext, vendors: Any
) -> None:
    """A project with `{"contextual_embeddings": true}`: the upload's chunks carry the
    LLM-written context in their metadata (and were embedded with it); without the setting,
    nothing is asked of the model."""

    def reply(system: str, user: str, body: dict[str, Any]) -> Reply:
        numbers = re.findall(r"^\[(\d+)\]", user, re.M)
        return Reply(json=completion("\n".join(f"[{n}] From the refund policy." for n in numbers)))

    vendor = vendors(reply)
    context = _llm_context(ctx, vendor)
    async for client in _client(context):
        user = await register_user(client)
        on = await create_project(client, user.headers)
        off = await create_project(client, user.headers)
        async with ctx.db.connection() as conn:
            await conn.execute(
                "UPDATE projects SET settings = '{\"contextual_embeddings\": true}' WHERE id = %s",
                (on["id"],),
            )
        for project in (on, off):
            response = await client.post(
                "/api/v1/knowledge/upload",
                headers=user.headers,
                data={"project_id": project["id"]},
                files={
                    "file": ("refunds.md", b"# Refunds\n\nReturns within 30 days.", "text/markdown")
                },
            )
            assert response.status_code == 202, response.text
        await drain(context)
        async with ctx.db.connection() as conn:
            cur = await conn.execute(
                "SELECT project_id::text AS project, metadata FROM knowledge_items "
                "WHERE project_id = ANY(%s)",
                ([on["id"], off["id"]],),
            )
            rows = await cur.fetchall()
    by_project = {row["project"]: row["metadata"] for row in rows}
    assert by_project[on["id"]]["context"] == "From the refund policy."
    assert by_project[on["id"]]["contextualized"] is True
    assert "context" not in by_project[off["id"]]
    assert len(vendor.calls(CHAT)) == 1
