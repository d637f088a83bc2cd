"""Embedding service on the real database: the PostgreSQL embedding cache, embedding spaces
(409 naming both models), resumable re-embedding into another space, and vectors of any
dimension stored and searched beside each other."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from lorebase.context import AppContext
from lorebase.embedding import repository
from lorebase.embedding.reembed import reembed_project
from lorebase.embedding.service import (
    check_space,
    embed_texts,
    embedding_input,
    ensure_space,
    text_sha256,
)
from lorebase.errors import Conflict
from lorebase.providers.base import Embedder, ProviderUnavailable
from tests.contract.conftest import KEY, embedder_for
from tests.contract.fake_vendor import FakeVendor, Reply

EMBED = "/v1/embeddings"


def fake_vector(text: str, dim: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return np.random.default_rng(seed).standard_normal(dim).tolist()


def embeddings_reply(path: str, body: Any) -> Reply:
    """OpenAI's /embeddings answer: one deterministic vector per input."""
    dim = body.get("dimensions", 1536)
    data = [
        {"object": "embedding", "index": i, "embedding": fake_vector(text, dim)}
        for i, text in enumerate(body["input"])
    ]
    usage = {"prompt_tokens": len(data), "total_tokens": len(data)}
    return Reply(json={"object": "list", "data": data, "model": body["model"], "usage": usage})


@pytest.fixture
def openai_vendor() -> Iterator[FakeVendor]:
    fake = FakeVendor(default=embeddings_reply)
    yield fake
    fake.stop()


def openai_embedder(vendor: FakeVendor, **values: Any) -> Embedder:
    return embedder_for(
        embedding_provider="openai",
        openai_api_key=SecretStr(KEY),
        openai_base_url=vendor.url + "/v1",
        provider_max_retries=0,
        **values,
    )


async def make_project(ctx: AppContext) -> uuid.UUID:
    async with ctx.db.transaction() as conn:
        user = await conn.execute(
            "INSERT INTO users (username, password_hash) VALUES (%s, 'x') RETURNING id",
            (f"emb-{uuid.uuid4().hex[:12]}",),
        )
        owner = (await user.fetchone())["id"]  # type: ignore[index]
        project = await conn.execute(
            "INSERT INTO projects (name, owner_id) VALUES ('p', %s) RETURNING id", (owner,)
        )
        return (await project.fetchone())["id"]  # type: ignore[index,no-any-return]


async def add_document(
    ctx: AppContext, project_id: uuid.UUID, chunks: list[str], embedder: Embedder
) -> None:
    """A document version whose chunks are stored in `embedder`'s space."""
    await ensure_space(db=ctx.db, project_id=project_id, embedder=embedder)
    vectors = await embed_texts(db=ctx.db, embedder=embedder, texts=chunks)
    async with ctx.db.transaction() as conn:
        doc = await conn.execute(
            "INSERT INTO documents (project_id, name, type, content_hash) "
            "VALUES (%s, 'd', 'text', 'h') RETURNING id",
            (project_id,),
        )
        document_id = (await doc.fetchone())["id"]  # type: ignore[index]
        version = await conn.execute(
            "INSERT INTO document_versions (document_id, version, major, minor, patch, "
            "content_hash) VALUES (%s, '1.0.0', 1, 0, 0, 'h') RETURNING id",
            (document_id,),
        )
        version_id = (await version.fetchone())["id"]  # type: ignore[index]
        items = [
            {
                "project_id": project_id,
                "document_id": document_id,
                "document_version_id": version_id,
                "chunk_index": index,
                "chunk_text": chunk,
                "content_hash": text_sha256(chunk),
                "metadata": {},
                "ts_config": "english",
            }
            for index, chunk in enumerate(chunks)
        ]
        await repository.insert_items(
            conn, items=items, vectors=vectors, model=embedder.model_id, dim=embedder.dimension
        )


async def items(ctx: AppContext, project_id: uuid.UUID) -> list[dict[str, Any]]:
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT chunk_index, chunk_text, embedding_model, embedding_dim FROM knowledge_items "
            "WHERE project_id = %s ORDER BY embedding_model, chunk_text",
            (project_id,),
        )
        return list(await cur.fetchall())


async def test_identical_text_is_embedded_once_then_served_from_the_cache(
    ctx: AppContext, openai_vendor: FakeVendor
) -> None:
    embedder = openai_embedder(openai_vendor)
    a, b, c = (f"{name} {uuid.uuid4()}" for name in "abc")

    first = await embed_texts(db=ctx.db, embedder=embedder, texts=[a, b, a])
    second = await embed_texts(db=ctx.db, embedder=embedder, texts=[b, c])
    third = await embed_texts(db=ctx.db, embedder=embedder, texts=[c, a, b])

    inputs = [sorted(call.body["input"]) for call in openai_vendor.calls(EMBED)]
    assert inputs == [sorted([a, b]), [c]]  # deduplicated, then only what was new
    assert first[0] == first[2]
    assert second[0] == pytest.approx(first[1], rel=1e-6)  # float32 in the cache
    assert third[0] == pytest.approx(second[1], rel=1e-6)
    assert all(len(v) == 1536 for v in first + second + third)
    async with ctx.db.connection() as conn:
        cached = await repository.get_cached(
            conn,
            provider="openai",
            model="text-embedding-3-small",
            dim=1536,
            hashes=[text_sha256(a), text_sha256(b), text_sha256(c)],
        )
    assert len(cached) == 3


async def test_the_cache_is_per_space(ctx: AppContext, openai_vendor: FakeVendor) -> None:
    text = f"same text {uuid.uuid4()}"
    await embed_texts(db=ctx.db, embedder=openai_embedder(openai_vendor), texts=[text])
    short = openai_embedder(openai_vendor, embedding_dimensions=512)
    (vector,) = await embed_texts(db=ctx.db, embedder=short, texts=[text])
    assert len(vector) == 512
    assert len(openai_vendor.calls(EMBED)) == 2


async def test_no_db_means_no_cache(ctx: AppContext, openai_vendor: FakeVendor) -> None:
    embedder = openai_embedder(openai_vendor)
    text = f"query {uuid.uuid4()}"
    await embed_texts(db=None, embedder=embedder, texts=[text])
    await embed_texts(db=None, embedder=embedder, texts=[text])
    assert len(openai_vendor.calls(EMBED)) == 2


async def test_batches_follow_the_embedders_max_batch(ctx: AppContext) -> None:
    ollama = FakeVendor(
        default=lambda path, body: Reply(
            json={
                "model": body["model"],
                "embeddings": [fake_vector(t, 768) for t in body["input"]],
            }
        )
    )
    try:
        embedder = embedder_for(embedding_provider="ollama", ollama_base_url=ollama.url)
        texts = [f"text {i} {uuid.uuid4()}" + "x" * (i % 7) for i in range(130)]
        vectors = await embed_texts(db=ctx.db, embedder=embedder, texts=texts)
    finally:
        ollama.stop()
    assert [len(call.body["input"]) for call in ollama.calls("/api/embed")] == [64, 64, 2]
    assert vectors[5] == pytest.approx(
        np.asarray(fake_vector(texts[5], 768)) / np.linalg.norm(fake_vector(texts[5], 768)),
        rel=1e-5,
    )


async def test_a_query_in_another_space_is_a_409_naming_both_models(
    ctx: AppContext, openai_vendor: FakeVendor
) -> None:
    project_id = await make_project(ctx)
    await add_document(ctx, project_id, [f"chunk {uuid.uuid4()}"], ctx.embedder)

    await check_space(db=ctx.db, project_id=project_id, embedder=ctx.embedder)  # same space
    with pytest.raises(Conflict) as caught:
        await check_space(db=ctx.db, project_id=project_id, embedder=openai_embedder(openai_vendor))

    assert caught.value.status == 409
    assert "'all-MiniLM-L6-v2' (384-d)" in caught.value.detail
    assert "'text-embedding-3-small' (1536-d)" in caught.value.detail
    assert f"lorebase reembed --project {project_id}" in caught.value.detail
    assert caught.value.extra["project_embedding_model"] == "all-MiniLM-L6-v2"


async def test_a_new_project_takes_the_first_space_it_is_given(
    ctx: AppContext, openai_vendor: FakeVendor
) -> None:
    project_id = await make_project(ctx)
    other = openai_embedder(openai_vendor)
    await check_space(db=ctx.db, project_id=project_id, embedder=other)  # no knowledge yet
    await ensure_space(db=ctx.db, project_id=project_id, embedder=other)
    with pytest.raises(Conflict):
        await ensure_space(db=ctx.db, project_id=project_id, embedder=ctx.embedder)


async def test_reembed_is_resumable_and_switches_only_when_complete(
    ctx: AppContext, openai_vendor: FakeVendor
) -> None:
    project_id = await make_project(ctx)
    chunks = [f"Passage {i} about topic {i} {uuid.uuid4()}" for i in range(6)]
    await add_document(ctx, project_id, chunks[:3], ctx.embedder)
    await add_document(ctx, project_id, chunks[3:], ctx.embedder)
    async with ctx.db.connection() as conn:
        before = await repository.get_space(conn, project_id=project_id)
    target = openai_embedder(openai_vendor, embedding_dimensions=512)

    # The vendor dies after the first batch: the run stops, the old space keeps serving.
    answered = 0

    def first_then_down(path: str, body: Any) -> Reply:
        nonlocal answered
        answered += 1
        if answered == 1:
            return embeddings_reply(path, body)
        return Reply(500, {"error": {"message": "down", "type": "server_error"}})

    openai_vendor.default = first_then_down
    with pytest.raises(ProviderUnavailable):
        await reembed_project(db=ctx.db, project_id=project_id, embedder=target, batch_size=2)
    first_batch = set(openai_vendor.calls(EMBED)[0].body["input"])
    assert len(first_batch) == 2
    rows = await items(ctx, project_id)
    assert [r["embedding_model"] for r in rows].count("all-MiniLM-L6-v2") == 6
    assert [r["embedding_model"] for r in rows].count("text-embedding-3-small@512") == 2
    await check_space(db=ctx.db, project_id=project_id, embedder=ctx.embedder)
    with pytest.raises(Conflict):
        await check_space(db=ctx.db, project_id=project_id, embedder=target)

    # Back up: the second run embeds only what is missing, then switches.
    openai_vendor.default = embeddings_reply
    openai_vendor.requests.clear()
    progress: list[tuple[int, int]] = []
    result = await reembed_project(
        db=ctx.db,
        project_id=project_id,
        embedder=target,
        batch_size=2,
        progress=lambda done, total: progress.append((done, total)),
    )

    sent = sorted(text for call in openai_vendor.calls(EMBED) for text in call.body["input"])
    assert sent == sorted(set(chunks) - first_batch)
    assert progress[0] == (2, 6)
    assert progress[-1] == (6, 6)
    assert (result.from_model, result.to_model) == (
        "all-MiniLM-L6-v2",
        "text-embedding-3-small@512",
    )
    assert (result.embedded, result.deleted, result.switched) == (4, 6, True)
    rows = await items(ctx, project_id)
    assert {(r["embedding_model"], r["embedding_dim"]) for r in rows} == {
        ("text-embedding-3-small@512", 512)
    }
    assert sorted(r["chunk_text"] for r in rows) == sorted(chunks)
    async with ctx.db.connection() as conn:
        after = await repository.get_space(conn, project_id=project_id)
    assert after["embedding_model"] == "text-embedding-3-small@512"
    assert after["embedding_dim"] == 512
    assert after["corpus_generation"] == before["corpus_generation"] + 1
    await check_space(db=ctx.db, project_id=project_id, embedder=target)

    # The new space answers a nearest-neighbour query through its partial index's cast.
    (query,) = await embed_texts(db=ctx.db, embedder=target, texts=[chunks[4]])
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT chunk_text FROM knowledge_items WHERE project_id = %s "
            "AND embedding_dim = 512 ORDER BY embedding::vector(512) <=> %s::vector(512) LIMIT 1",
            (project_id, np.asarray(query, dtype=np.float32)),
        )
        assert (await cur.fetchone())["chunk_text"] == chunks[4]  # type: ignore[index]

    # Running it again has nothing left to do.
    again = await reembed_project(db=ctx.db, project_id=project_id, embedder=target)
    assert (again.embedded, again.switched) == (0, False)


async def test_reembed_uses_the_same_input_as_ingestion() -> None:
    assert embedding_input("chunk", {"context": "From the guide."}) == "From the guide.\n\nchunk"
    assert embedding_input("chunk", {"context": "  "}) == "chunk"
    assert embedding_input("chunk", None) == "chunk"


@pytest.mark.parametrize(
    ("dim", "cast"),
    [
        (384, "vector"),
        (768, "vector"),
        (1024, "vector"),
        (1536, "vector"),
        (3072, "halfvec"),
        (100, "vector"),
    ],
)
async def test_any_dimension_is_stored_and_searched(ctx: AppContext, dim: int, cast: str) -> None:
    project_id = await make_project(ctx)

    class Fixed:
        provider, model_id, dimension = "test", f"model-{dim}", dim
        max_batch, max_input_tokens, max_batch_tokens = 16, 512, 8192

        async def embed_batch(self, texts: Any) -> list[list[float]]:
            vectors = [np.asarray(fake_vector(t, dim)) for t in texts]
            return [(v / np.linalg.norm(v)).tolist() for v in vectors]

    texts = [f"{dim} first {uuid.uuid4()}", f"{dim} second {uuid.uuid4()}"]
    await add_document(ctx, project_id, texts, Fixed())  # type: ignore[arg-type]
    (query,) = await Fixed().embed_batch([texts[1]])
    async with ctx.db.connection() as conn:
        # dim and cast come from the parameter list above, not from input.
        sql = (
            "SELECT chunk_text FROM knowledge_items WHERE project_id = %s "  # noqa: S608
            f"AND embedding_dim = {dim} ORDER BY embedding::{cast}({dim}) <=> %s::{cast}({dim}) "
            "LIMIT 1"
        )
        cur = await conn.execute(sql, (project_id, np.asarray(query, dtype=np.float32)))
        assert (await cur.fetchone())["chunk_text"] == texts[1]  # type: ignore[index]
