"""Uploads over HTTP, indexed by a real worker on the real queue."""

from __future__ import annotations

from typing import Any

import httpx

from lorebase.context import AppContext
from lorebase.jobs import run_worker
from lorebase.knowledge.runner import job_handler, worker_options
from tests.factories import create_project, register_user

GUIDE = """# Deployment guide

Lorebase runs as one process with an embedded database. This guide explains how to run it
in production: where the data lives, how to back it up, and how to scale indexing out over
several machines when one worker is not enough for the corpus you feed it.

## Backups

Back up the data directory every night with a snapshot of the volume.
Restores take about five minutes for a small corpus.

## Scaling

Run several `lorebase worker` processes against one PostgreSQL to index faster.
"""


async def drain(ctx: AppContext) -> None:
    """Process every queued job, then return (a one-shot worker on the real queue)."""
    await run_worker(
        ctx.db, handler=job_handler(ctx), options=worker_options(ctx, wait=False, concurrency=2)
    )


async def chunks_of(ctx: AppContext, document_id: str) -> list[dict[str, Any]]:
    async with ctx.db.connection() as conn:
        cursor = await conn.execute(
            "SELECT ki.chunk_index, ki.chunk_text, ki.metadata, dv.version, ki.embedding_model, "
            "ki.embedding_dim, ki.ts_config::text AS ts_config FROM knowledge_items ki "
            "JOIN document_versions dv ON dv.id = ki.document_version_id "
            "WHERE ki.document_id = %s ORDER BY chunk_index",
            (document_id,),
        )
        return await cursor.fetchall()


async def test_upload_is_indexed_by_a_worker(ctx: AppContext, client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    response = await client.post(
        "/api/v1/knowledge/upload",
        headers=user.headers,
        data={"project_id": project["id"], "tags": "ops,guide"},
        files={"file": ("guide.md", GUIDE.encode(), "text/markdown")},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["job_id"]
    assert body["version"] == "1.0.0"
    job = (await client.get(f"/api/v1/jobs/{body['job_id']}", headers=user.headers)).json()
    assert job["status"] == "queued"

    await drain(ctx)

    job = (await client.get(f"/api/v1/jobs/{body['job_id']}", headers=user.headers)).json()
    assert job["status"] == "succeeded", job
    stages = job["progress"]["stages"]
    assert set(stages) == {"extract", "chunk", "embed", "store"}
    assert all(stage["done"] == stage["total"] for stage in stages.values())
    assert job["document_ids"] == [body["document_id"]]

    chunks = await chunks_of(ctx, body["document_id"])
    assert chunks, "the document was chunked and stored"
    sections = [c["metadata"]["section_path"] for c in chunks]
    assert ["Deployment guide", "Backups"] in sections
    first = chunks[0]
    assert first["embedding_model"] == ctx.embedder.model_id
    assert first["embedding_dim"] == ctx.embedder.dimension
    assert first["ts_config"] == "english"
    assert first["metadata"]["source"] == "guide.md"
    assert {"char_start", "char_end", "chunk_index"} <= set(first["metadata"])

    document = (
        await client.get(f"/api/v1/documents/{body['document_id']}", headers=user.headers)
    ).json()
    assert document["status"] == "ready"
    assert document["tags"] == ["ops", "guide"]
    start, end = first["metadata"]["char_start"], first["metadata"]["char_end"]
    assert document["content"][start:end] == first["chunk_text"]
