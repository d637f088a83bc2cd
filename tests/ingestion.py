"""Helpers for tests that ingest: run the queue dry, look at stored chunks, upload files."""

from __future__ import annotations

from typing import Any

import httpx

from lorebase.context import AppContext
from lorebase.jobs import QUEUE, run_worker
from lorebase.knowledge.runner import job_handler, worker_options


async def drain(ctx: AppContext, *, rounds: int = 20) -> None:
    """Process queued jobs until none is due (one-shot workers on the real queue; a retry
    queued during one round runs in the next)."""
    for _ in range(rounds):
        await run_worker(
            ctx.db, handler=job_handler(ctx), options=worker_options(ctx, wait=False, concurrency=2)
        )
        async with ctx.db.connection() as conn:
            cursor = await conn.execute(
                "SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'todo' "
                "AND queue_name = %s AND (scheduled_at IS NULL OR scheduled_at <= now())",
                (QUEUE,),
            )
            row = await cursor.fetchone()
        if row is None or row["n"] == 0:
            return
    raise AssertionError(f"jobs still queued after {rounds} worker rounds")


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


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], project_id: str, *files: tuple[str, bytes]
) -> httpx.Response:
    return await client.post(
        "/api/v1/knowledge/upload",
        headers=headers,
        data={"project_id": project_id},
        files=[("file", (name, data, "application/octet-stream")) for name, data in files],
    )


async def job_of(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict:
    response = await client.get(f"/api/v1/jobs/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result
