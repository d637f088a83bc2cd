"""SQL the harness runs directly against the server's embedded PostgreSQL: reading chunks
back, exact neighbours (recall's ground truth) and dropping/rebuilding the HNSW index around an
index-scale fill. It writes no rows: the fill goes through `knowledge.bulk` and
`documents.service`; everything else the harness does goes through the public API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from lorebase.db import Conn


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[Conn]:
    conn = await AsyncConnection.connect(url, autocommit=True, row_factory=dict_row)
    try:
        await register_vector_async(conn)
        yield conn
    finally:
        await conn.close()


async def project_chunks(conn: Conn, *, project_id: UUID) -> list[dict[str, Any]]:
    """Every chunk of a project with its vector (numpy float32), in document order."""
    cur = await conn.execute(
        """
        SELECT id, document_id, document_version_id, chunk_index, chunk_text, content_hash,
               embedding, embedding_model, embedding_dim, metadata
        FROM knowledge_items WHERE project_id = %s ORDER BY document_id, chunk_index
        """,
        (project_id,),
    )
    return await cur.fetchall()


async def hnsw_index(conn: Conn, *, dim: int) -> tuple[str, str] | None:
    """(name, definition) of the partial HNSW index for `dim`-dimensional embeddings."""
    cur = await conn.execute(
        """
        SELECT indexname, indexdef FROM pg_indexes
        WHERE tablename = 'knowledge_items' AND indexdef ILIKE '%%using hnsw%%'
          AND indexdef LIKE %s
        """,
        (f"%(embedding_dim = {int(dim)})%",),
    )
    row = await cur.fetchone()
    return (row["indexname"], row["indexdef"]) if row else None


async def drop_index(conn: Conn, *, name: str) -> None:
    await conn.execute(f'DROP INDEX IF EXISTS "{name}"')


async def build_index(conn: Conn, *, definition: str, maintenance_work_mem_mb: int) -> None:
    """Re-create an index from its `pg_get_indexdef` text, with room to build in memory."""
    await conn.execute(f"SET maintenance_work_mem = '{int(maintenance_work_mem_mb)}MB'")
    await conn.execute("SET max_parallel_maintenance_workers = 1")
    await conn.execute(definition)  # the definition PostgreSQL itself printed
    await conn.execute("ANALYZE knowledge_items")


async def exact_neighbours(
    conn: Conn, *, project_id: UUID, dim: int, query_vector: Any, limit: int
) -> list[UUID]:
    """Exact cosine top-k of a project with index scans disabled (ground truth)."""
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_indexscan = off")
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        cur = await conn.execute(
            f"""
            SELECT id FROM knowledge_items
            WHERE project_id = %s AND embedding_dim = {int(dim)}
            ORDER BY embedding::vector({int(dim)}) <=> %s::vector({int(dim)})
            LIMIT %s
            """,
            (project_id, query_vector, limit),
        )
        return [row["id"] for row in await cur.fetchall()]


async def count_all_chunks(conn: Conn, *, dim: int) -> int:
    """Rows the partial HNSW index for `dim` covers (every project)."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM knowledge_items WHERE embedding_dim = %s", (dim,)
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0
