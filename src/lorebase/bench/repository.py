"""SQL the harness runs directly against the server's embedded PostgreSQL: bulk-filling
`knowledge_items` for index-scale scenarios (COPY) and rebuilding the HNSW index it fills.

Everything else the harness does goes through the public API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from pgvector.psycopg import register_vector_async
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from lorebase.db import Conn

COPY_COLUMNS = (
    "id, project_id, document_id, document_version_id, chunk_index, chunk_text, content_hash, "
    "embedding, embedding_model, embedding_dim"
)
COPY_TYPES = ["uuid", "uuid", "uuid", "uuid", "int4", "text", "text", "vector", "text", "int4"]


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


async def count_chunks(conn: Conn, *, project_id: UUID) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM knowledge_items WHERE project_id = %s", (project_id,)
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


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


async def copy_chunks(conn: Conn, rows: Iterable[tuple[Any, ...]]) -> int:
    """Binary COPY of rows shaped like `COPY_COLUMNS`; returns how many were written."""
    written = 0
    async with conn.cursor() as cur:
        sql = f"COPY knowledge_items ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        async with cur.copy(sql) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                await copy.write_row(row)
                written += 1
    return written


async def insert_document(
    conn: Conn, *, project_id: UUID, name: str, content_hash: str
) -> tuple[UUID, UUID]:
    """A ready document with one version, to own synthetic chunks: (document id, version id)."""
    cur = await conn.execute(
        """
        WITH d AS (
            INSERT INTO documents (project_id, name, type, status, content_hash)
            VALUES (%s, %s, 'text', 'ready', %s) RETURNING id
        )
        INSERT INTO document_versions (document_id, version, major, minor, patch, content_hash)
        SELECT id, '1.0.0', 1, 0, 0, %s FROM d RETURNING document_id, id
        """,
        (project_id, name, content_hash, content_hash),
    )
    row = await cur.fetchone()
    assert row is not None
    return row["document_id"], row["id"]


async def bump_corpus_generation(conn: Conn, *, project_id: UUID) -> None:
    """Filled chunks change the corpus: answers cached before must not be served."""
    await conn.execute(
        "UPDATE projects SET corpus_generation = corpus_generation + 1 WHERE id = %s",
        (project_id,),
    )


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
