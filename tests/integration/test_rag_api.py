"""`POST /api/v1/rag/query` end to end through the ASGI app: every flag, filters, agentic
answers with verified citations, streaming, the answer cache and re-ranking (a tiny ONNX
cross-encoder built here; the listwise LLM path is in test_rag_llm.py)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer

from lorebase.context import AppContext
from lorebase.main import create_app
from lorebase.providers.local import TOKENIZER_PATH
from lorebase.retrieval.vector import query_embedding_key
from tests.factories import create_project, register_user
from tests.retrieval_seed import seed_document, seed_new_version

QUERY = "/api/v1/rag/query"

DOCS = {
    "scopes": [
        "The nonlocal statement causes the listed identifiers to refer to previously bound "
        "variables in the nearest enclosing scope excluding globals.",
        "Names listed in a global statement must not be used in the same code block before "
        "that global statement.",
    ],
    "defaults": [
        "Default parameter values are evaluated from left to right when the function "
        "definition is executed, so a mutable default such as a list is shared by every call.",
    ],
    "loops": [
        "The break statement terminates the nearest enclosing loop, skipping the optional "
        "else clause of the loop.",
        "The continue statement continues with the next cycle of the nearest enclosing loop.",
    ],
    "zoo": [
        "Zebras graze on the savanna in large herds and migrate with the seasons.",
    ],
}


async def _project_with_docs(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, Any]:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    project_id = uuid.UUID(project["id"])
    docs = {}
    for name, chunks in DOCS.items():
        docs[name] = await seed_document(
            ctx,
            project_id=project_id,
            name=name,
            chunks=chunks,
            tags=["animals"] if name == "zoo" else ["python"],
            type_="text" if name == "zoo" else "markdown",
        )
    return {"user": user, "project_id": project["id"], "docs": docs}


async def _query(
    client: httpx.AsyncClient, kb: dict[str, Any], text: str, **flags: Any
) -> dict[str, Any]:
    response = await client.post(
        QUERY,
        json={"project_id": kb["project_id"], "query_text": text, **flags},
        headers=kb["user"].headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_semantic_query_returns_the_spec_shape(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(client, ctx)
    body = await _query(client, kb, "how do I leave a loop early?", top_k=3)
    assert set(body) == {
        "query_id",
        "results",
        "total_results",
        "synthesized_answer",
        "citations",
        "cached",
        "warnings",
        "timings_ms",
    }
    assert body["total_results"] == len(body["results"]) == 3
    assert body["synthesized_answer"] is None  # use_agentic_rag defaults to false
    assert body["cached"] is False
    top = body["results"][0]
    assert top["document_name"] == "loops"
    assert top["version"] == "1.0.0"
    assert top["rerank_score"] is None
    scores = [r["similarity_score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert {"embed", "vector", "total"} <= set(body["timings_ms"])


async def test_query_validation_and_access(client: httpx.AsyncClient, ctx: AppContext) -> None:
    kb = await _project_with_docs(client, ctx)
    blank = await client.post(
        QUERY,
        json={"project_id": kb["project_id"], "query_text": "   "},
        headers=kb["user"].headers,
    )
    assert blank.status_code == 422
    assert blank.headers["content-type"].startswith("application/problem+json")
    stranger = await register_user(client)
    hidden = await client.post(
        QUERY,
        json={"project_id": kb["project_id"], "query_text": "loops"},
        headers=stranger.headers,
    )
    assert hidden.status_code == 404
    anonymous = await client.post(
        QUERY, json={"project_id": kb["project_id"], "query_text": "loops"}
    )
    assert anonymous.status_code == 401


async def test_filters_restrict_results(client: httpx.AsyncClient, ctx: AppContext) -> None:
    kb = await _project_with_docs(client, ctx)
    for hybrid in (False, True):
        body = await _query(
            client,
            kb,
            "zebra herds and loops",
            top_k=10,
            use_hybrid_search=hybrid,
            filters={"tags": ["animals"]},
        )
        assert {r["document_name"] for r in body["results"]} == {"zoo"}
        only = await _query(
            client,
            kb,
            "statement",
            top_k=10,
            use_hybrid_search=hybrid,
            filters={"document_ids": [str(kb["docs"]["loops"].id)], "types": ["markdown"]},
        )
        assert {r["document_name"] for r in only["results"]} == {"loops"}


async def test_hybrid_flag_adds_the_lexical_leg(client: httpx.AsyncClient, ctx: AppContext) -> None:
    kb = await _project_with_docs(client, ctx)
    semantic = await _query(client, kb, "nonlocal", top_k=5, use_hybrid_search=False)
    hybrid = await _query(client, kb, "nonlocal", top_k=5, use_hybrid_search=True)
    assert "fulltext" in hybrid["timings_ms"]
    assert "fulltext" not in semantic["timings_ms"]
    assert "nonlocal" in hybrid["results"][0]["chunk_text"]


async def test_agentic_answer_has_markers_and_verified_citations(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(client, ctx)
    body = await _query(
        client,
        kb,
        "When are default parameter values evaluated?",
        top_k=3,
        use_agentic_rag=True,
    )
    answer = body["synthesized_answer"]
    assert answer
    assert "[1]" in answer
    assert body["citations"], body
    by_id = {r["id"]: r["chunk_text"] for r in body["results"]}
    for citation in body["citations"]:
        assert citation["quote"] in by_id[citation["result_id"]]
    assert "answer" in body["timings_ms"]


async def test_agentic_answer_admits_when_passages_lack_it(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(client, ctx)
    body = await _query(
        client,
        kb,
        "What is the boiling point of mercury in kelvin?",
        top_k=2,
        use_agentic_rag=True,
    )
    assert "do not contain" in body["synthesized_answer"]
    assert body["citations"] == []


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        if name:
            events.append((name, json.loads("\n".join(data))))
    return events


async def test_streaming_sends_typed_events_in_order(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(client, ctx)
    headers = {**kb["user"].headers, "Accept": "text/event-stream"}
    response = await client.post(
        QUERY,
        json={
            "project_id": kb["project_id"],
            "query_text": "what does the break statement do in a loop?",
            "top_k": 3,
            "use_agentic_rag": True,
        },
        headers=headers,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "results"
    assert names[-2:] == ["citations", "done"]
    assert set(names[1:-2]) == {"delta"}
    assert len(events[0][1]["results"]) == 3
    text = "".join(data["text"] for name, data in events if name == "delta")
    done = events[-1][1]
    assert text == done["synthesized_answer"]
    assert done["cached"] is False
    ids = {r["id"] for r in events[0][1]["results"]}
    by_id = {r["id"]: r["chunk_text"] for r in events[0][1]["results"]}
    for citation in events[-2][1]["citations"]:
        assert citation["result_id"] in ids
        assert citation["quote"] in by_id[citation["result_id"]]

    plain = await client.post(
        QUERY,
        json={"project_id": kb["project_id"], "query_text": "loops", "top_k": 2},
        headers=headers,
    )
    assert [name for name, _ in _events(plain.text)] == ["results", "done"]


async def test_streaming_errors_before_the_stream_are_problems(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(client, ctx)
    stranger = await register_user(client)
    response = await client.post(
        QUERY,
        json={"project_id": kb["project_id"], "query_text": "loops"},
        headers={**stranger.headers, "Accept": "text/event-stream"},
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")


def _counter(metrics: str, result: str) -> float:
    name = f'lorebase_answer_cache_requests_total{{result="{result}"}}'
    for line in metrics.splitlines():
        if line.startswith(name):
            return float(line.split()[-1])
    return 0.0


async def test_answer_cache_hits_then_misses_after_a_new_version(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(client, ctx)
    before = (await client.get("/metrics")).text
    first = await _query(client, kb, "What does continue do?", top_k=2, use_agentic_rag=True)
    second = await _query(client, kb, "  what does CONTINUE do? ", top_k=2, use_agentic_rag=True)
    assert first["cached"] is False
    assert second["cached"] is True
    assert second["results"] == first["results"]
    assert second["synthesized_answer"] == first["synthesized_answer"]
    assert second["query_id"] != first["query_id"]
    # A hit is served from stored JSON: the same document but for the per-request fields.
    per_request = {"query_id", "cached", "timings_ms"}
    assert set(second) == set(first)
    assert {k: v for k, v in second.items() if k not in per_request} == {
        k: v for k, v in first.items() if k not in per_request
    }
    assert set(second["timings_ms"]) == {"cache", "total"}
    other_flags = await _query(client, kb, "What does continue do?", top_k=3)
    assert other_flags["cached"] is False
    after = (await client.get("/metrics")).text
    assert _counter(after, "hit") == _counter(before, "hit") + 1
    assert _counter(after, "miss") == _counter(before, "miss") + 2

    await seed_new_version(
        ctx,
        project_id=uuid.UUID(kb["project_id"]),
        document_id=kb["docs"]["loops"].id,
        version="1.1.0",
        chunks=["The continue statement skips to the next iteration; it was revised."],
    )
    third = await _query(client, kb, "What does continue do?", top_k=2, use_agentic_rag=True)
    assert third["cached"] is False
    assert any("revised" in r["chunk_text"] for r in third["results"])
    fourth = await _query(client, kb, "What does continue do?", top_k=2, use_agentic_rag=True)
    assert fourth["cached"] is True


async def test_embedding_space_mismatch_is_a_409_naming_both(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(client, ctx)
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE projects SET embedding_model = 'text-embedding-3-small', embedding_dim = 1536"
            " WHERE id = %s",
            (kb["project_id"],),
        )
    response = await client.post(
        QUERY,
        json={"project_id": kb["project_id"], "query_text": "loops"},
        headers=kb["user"].headers,
    )
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert "text-embedding-3-small" in detail
    assert ctx.embedder.model_id in detail


async def test_rerank_without_a_reranker_warns_and_keeps_order(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(client, ctx)
    plain = await _query(client, kb, "loop statements", top_k=4, use_hybrid_search=True)
    body = await _query(
        client, kb, "loop statements", top_k=4, use_hybrid_search=True, use_re_ranking=True
    )
    assert any("no reranker is configured" in w for w in body["warnings"])
    assert [r["id"] for r in body["results"]] == [r["id"] for r in plain["results"]]
    assert all(r["rerank_score"] is None for r in body["results"])


# --- a cross-encoder built here: a real ONNX graph, run by onnxruntime ---------------------

MAGIC = "zebras"


def build_cross_encoder(directory: Path, *, favoured: str = MAGIC) -> Path:
    """A tiny cross-encoder: logit = 4 x (count of `favoured`'s word pieces among the passage
    tokens, token_type_ids == 1) - 2. Same inputs and output shape as an exported
    ms-marco MiniLM model, with the MiniLM tokenizer beside it."""
    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    vocab_size = tokenizer.get_vocab_size()
    weights = np.zeros(vocab_size, dtype=np.float32)
    for token_id in tokenizer.encode(favoured, add_special_tokens=False).ids:
        weights[token_id] = 4.0
    nodes = [
        helper.make_node("Gather", ["weights", "input_ids"], ["token_scores"], axis=0),
        helper.make_node("Mul", ["token_type_ids", "attention_mask"], ["passage_mask_i"]),
        helper.make_node("Cast", ["passage_mask_i"], ["passage_mask"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["token_scores", "passage_mask"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axes"], ["summed"], keepdims=1),
        helper.make_node("Sub", ["summed", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny-cross-encoder",
        [
            helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
            for name in ("input_ids", "attention_mask", "token_type_ids")
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1])],
        initializer=[
            numpy_helper.from_array(weights, "weights"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.array([2.0], dtype=np.float32), "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.onnx"
    onnx.save(model, str(path))
    (directory / "tokenizer.json").write_bytes(TOKENIZER_PATH.read_bytes())
    return path


async def _client_for(ctx: AppContext, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The same database and providers, other settings: a second app over the same pool."""
    variant = dataclasses.replace(
        ctx, settings=ctx.settings.model_copy(update=settings), rerankers={}
    )
    application = create_app(context=variant)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
async def cross_encoder_client(ctx: AppContext, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    path = build_cross_encoder(tmp_path / "ce")
    async for http in _client_for(ctx, rerank_model_path=path):
        yield http


async def test_cross_encoder_reorders_results(
    cross_encoder_client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(cross_encoder_client, ctx)
    query = "which statement ends a loop"
    plain = await _query(cross_encoder_client, kb, query, top_k=4, use_hybrid_search=True)
    assert plain["results"][0]["document_name"] != "zoo"
    body = await _query(
        cross_encoder_client, kb, query, top_k=4, use_hybrid_search=True, use_re_ranking=True
    )
    assert body["warnings"] == []
    assert body["results"][0]["document_name"] == "zoo"
    scores = [r["rerank_score"] for r in body["results"]]
    assert all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 0.8 > scores[-1]
    assert "rerank" in body["timings_ms"]


@pytest.fixture
async def broken_reranker_client(
    ctx: AppContext, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.onnx").write_bytes(b"not an onnx graph")
    (bad / "tokenizer.json").write_bytes(TOKENIZER_PATH.read_bytes())
    async for http in _client_for(ctx, rerank_model_path=bad / "model.onnx"):
        yield http


async def test_a_failing_reranker_keeps_the_order_and_warns(
    broken_reranker_client: httpx.AsyncClient, ctx: AppContext
) -> None:
    kb = await _project_with_docs(broken_reranker_client, ctx)
    query = "which statement ends a loop"
    plain = await _query(broken_reranker_client, kb, query, top_k=4, use_hybrid_search=True)
    body = await _query(
        broken_reranker_client, kb, query, top_k=4, use_hybrid_search=True, use_re_ranking=True
    )
    assert [r["id"] for r in body["results"]] == [r["id"] for r in plain["results"]]
    assert any("reranker unavailable" in w for w in body["warnings"])
    # A failed reranker is not cached: the next identical query tries again.
    again = await _query(
        broken_reranker_client, kb, query, top_k=4, use_hybrid_search=True, use_re_ranking=True
    )
    assert again["cached"] is False


def _metric(metrics: str, name: str, result: str) -> float:
    prefix = f'{name}{{result="{result}"}}'
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def _count_reads(ctx: AppContext, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the cache's GET and MGET calls from now on."""
    counts: dict[str, int] = {}
    redis = ctx.cache.redis
    for name in ("get", "mget"):
        original = getattr(redis, name)

        def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            counts[_name] = counts.get(_name, 0) + 1
            return _original(*args)

        monkeypatch.setattr(redis, name, counted)
    return counts


async def test_query_embeddings_are_cached_in_redis_by_model_and_text(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb = await _project_with_docs(client, ctx)
    text = f"loops and scopes {uuid.uuid4().hex[:6]}"
    name = "lorebase_query_embedding_cache_requests_total"
    before = (await client.get("/metrics")).text
    reads = _count_reads(ctx, monkeypatch)
    await _query(client, kb, text, top_k=2)
    # Other flags: an answer-cache miss, but the same text in the same embedding space.
    await _query(client, kb, text, top_k=3)
    # Each query read its answer and its embedding in one round trip, not two.
    assert reads == {"mget": 2}
    after = (await client.get("/metrics")).text
    assert _metric(after, name, "miss") == _metric(before, name, "miss") + 1
    assert _metric(after, name, "hit") == _metric(before, name, "hit") + 1
    key = query_embedding_key(ctx.cache, model_id=ctx.embedder.model_id, text=text)
    assert ctx.embedder.model_id in key
    # Stored compactly (float16 in the cache envelope), read back as float32.
    raw = await ctx.cache.redis.get(key)
    assert raw is not None
    assert len(raw) == 2 * ctx.embedder.dimension + 8
    vector = await ctx.cache.get_vector(key, dimension=ctx.embedder.dimension)
    assert vector is not None
    assert vector.dtype.name == "float32"


async def _forget_answers(ctx: AppContext, project_id: str) -> None:
    """Drop the project's cached answers, so the next query is a miss again."""
    pattern = ctx.cache.key("answer", "*", project_id, "*")
    keys = [key async for key in ctx.cache.redis.scan_iter(match=pattern)]
    if keys:
        await ctx.cache.redis.delete(*keys)


async def _streamed(
    client: httpx.AsyncClient, kb: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """The SSE answer folded into the JSON body's shape (without query_id)."""
    headers = {**kb["user"].headers, "Accept": "text/event-stream"}
    response = await client.post(QUERY, json=body, headers=headers)
    assert response.status_code == 200, response.text
    events = _events(response.text)
    by_name = {name: data for name, data in events}
    assert "error" not in by_name, by_name.get("error")
    done = by_name["done"]
    return {
        "results": by_name["results"]["results"],
        "total_results": by_name["results"]["total_results"],
        "synthesized_answer": done["synthesized_answer"],
        "citations": by_name.get("citations", {"citations": []})["citations"],
        "cached": done["cached"],
        "warnings": done["warnings"],
        "timings": set(done["timings_ms"]),
    }


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    fields = ("results", "total_results", "synthesized_answer", "citations", "cached", "warnings")
    return {**{k: body[k] for k in fields}, "timings": set(body["timings_ms"])}


async def test_json_and_stream_share_one_pipeline(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    """The same query over JSON and over SSE (each a cache miss, then each a hit) gives the
    same results, answer, citations, warnings and timed steps."""
    kb = await _project_with_docs(client, ctx)
    text = "what does the break statement do in a loop?"
    flags = {
        "top_k": 3,
        "use_hybrid_search": True,
        "use_re_ranking": True,
        "use_agentic_rag": True,
    }
    body = {"project_id": kb["project_id"], "query_text": text, **flags}
    as_json = _comparable(await _query(client, kb, text, **flags))
    await _forget_answers(ctx, kb["project_id"])
    streamed = await _streamed(client, kb, body)
    assert as_json["cached"] is streamed["cached"] is False
    assert as_json["synthesized_answer"]
    assert as_json["citations"]
    assert as_json["warnings"]  # no reranker is configured: said the same way on both paths
    assert streamed == as_json
    steps = {"fulltext", "embed", "vector", "fuse", "fetch", "rerank", "answer", "total"}
    assert steps <= streamed["timings"]

    cached_json = _comparable(await _query(client, kb, text, **flags))
    cached_stream = await _streamed(client, kb, body)
    assert cached_json["cached"] is cached_stream["cached"] is True

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k not in ("cached", "timings")}

    assert answer(cached_json) == answer(cached_stream) == answer(as_json)
