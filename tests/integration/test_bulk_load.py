"""`knowledge.bulk.load_prepared_items` and the bench's synthetic owner document: the two writes
the bench's index-scale fill makes, through the domains rather than SQL of its own."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest

from lorebase.bench.seeding import FILL_CHUNK_OFFSET, synthetic_owner
from lorebase.context import AppContext
from lorebase.knowledge.bulk import load_prepared_items
from tests.factories import create_project, register_user

DIM = 4


async def _project(client: httpx.AsyncClient) -> uuid.UUID:
    user = await register_user(client)
    return uuid.UUID((await create_project(client, user.headers))["id"])


async def _state(ctx: AppContext, project_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.db.connection() as conn:
        cursor = await conn.execute(
            """
            SELECT p.corpus_generation,
                   (SELECT count(*) FROM knowledge_items k WHERE k.project_id = p.id) AS items,
                   (SELECT count(*) FROM documents d WHERE d.project_id = p.id) AS documents
            FROM projects p WHERE p.id = %s
            """,
            (project_id,),
        )
        row = await cursor.fetchone()
    assert row is not None
    return dict(row)


def _rows(project_id: uuid.UUID, owner: tuple[uuid.UUID, uuid.UUID], n: int) -> list[Any]:
    vector = np.full(DIM, 0.5, dtype=np.float32)
    rows = []
    for i in range(n):
        ids = (uuid.uuid4(), project_id, *owner)
        rows.append(
            (*ids, FILL_CHUNK_OFFSET + i, f"synthetic {i}", f"h{i}", vector, "test-model", DIM)
        )
    return rows


async def test_synthetic_owner_then_prepared_rows_are_searchable_chunks(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    project_id = await _project(client)
    async with ctx.db.connection() as conn:
        owner = await synthetic_owner(conn, project_id=project_id)
        cursor = await conn.execute(
            "SELECT status, version, name FROM documents WHERE id = %s", (owner[0],)
        )
        document = await cursor.fetchone()
    assert document == {"status": "ready", "version": "1.0.0", "name": "synthetic-vectors"}
    before = await _state(ctx, project_id)

    async with ctx.db.transaction() as conn:
        written = await load_prepared_items(
            conn, project_id=project_id, rows=_rows(project_id, owner, 3)
        )

    assert written == 3
    after = await _state(ctx, project_id)
    assert after["items"] == 3
    assert after["corpus_generation"] == before["corpus_generation"] + 1


async def test_a_bad_row_writes_nothing(ctx: AppContext, client: httpx.AsyncClient) -> None:
    project_id = await _project(client)
    async with ctx.db.connection() as conn:
        owner = await synthetic_owner(conn, project_id=project_id)
    before = await _state(ctx, project_id)
    rows = _rows(project_id, owner, 3)
    rows[2] = (*rows[2][:2], uuid.uuid4(), *rows[2][3:])  # a document that does not exist

    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        async with ctx.db.transaction() as conn:
            await load_prepared_items(conn, project_id=project_id, rows=rows)

    assert await _state(ctx, project_id) == before, "no chunk and no generation bump"
