"""SQL of the embedding domain: the embedding cache, projects' embedding spaces and the
re-embedding of knowledge items into a new space."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb

from lorebase.db import Conn

_ITEM_COLUMNS = (
    "project_id, document_id, document_version_id, chunk_index, chunk_text, content_hash, "
    "metadata, ts_config"
)


async def get_cached(
    conn: Conn, *, provider: str, model: str, dim: int, hashes: Sequence[str]
) -> dict[str, list[float]]:
    """Cached vectors of these text hashes in one space."""
    if not hashes:
        return {}
    cur = await conn.execute(
        "SELECT text_sha256, embedding FROM embedding_cache "
        "WHERE provider = %s AND model = %s AND dim = %s AND text_sha256 = ANY(%s)",
        (provider, model, dim, list(hashes)),
    )
    # pgvector's loader gives a `Vector` (binary results) or a numpy array (text results).
    return {
        row["text_sha256"]: [float(x) for x in np.asarray(_values(row["embedding"]))]
        for row in await cur.fetchall()
    }


def _values(vector: Any) -> Any:
    return vector.to_numpy() if hasattr(vector, "to_numpy") else vector


async def put_cached(
    conn: Conn,
    *,
    provider: str,
    model: str,
    dim: int,
    entries: Sequence[tuple[str, Sequence[float]]],
) -> None:
    """Remember vectors by text hash; an entry already there is kept."""
    if not entries:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO embedding_cache (provider, model, text_sha256, dim, embedding) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (provider, model, sha, dim, np.asarray(vector, dtype=np.float32))
                for sha, vector in entries
            ],
        )


async def get_space(conn: Conn, *, project_id: uuid.UUID, lock: bool = False) -> dict[str, Any]:
    """The project's `embedding_model`, `embedding_dim` and `corpus_generation` ({} if none)."""
    cur = await conn.execute(
        "SELECT embedding_model, embedding_dim, corpus_generation FROM projects WHERE id = %s"
        + (" FOR UPDATE" if lock else ""),
        (project_id,),
    )
    row = await cur.fetchone()
    return dict(row) if row else {}


async def claim_space(conn: Conn, *, project_id: uuid.UUID, model: str, dim: int) -> None:
    """Give a project without knowledge its first embedding space."""
    await conn.execute(
        "UPDATE projects SET embedding_model = %s, embedding_dim = %s, updated_at = now() "
        "WHERE id = %s AND embedding_model IS NULL",
        (model, dim, project_id),
    )


async def count_items(conn: Conn, *, project_id: uuid.UUID, model: str) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM knowledge_items WHERE project_id = %s AND embedding_model = %s",
        (project_id, model),
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


_MISSING = (
    "FROM knowledge_items k WHERE k.project_id = %(project)s AND k.embedding_model = %(old)s "
    "AND NOT EXISTS (SELECT 1 FROM knowledge_items n "
    "WHERE n.document_version_id = k.document_version_id AND n.chunk_index = k.chunk_index "
    "AND n.embedding_model = %(new)s)"
)


async def count_missing(conn: Conn, *, project_id: uuid.UUID, old: str, new: str) -> int:
    """Items of the old space that have no counterpart in the new one yet."""
    cur = await conn.execute(
        "SELECT count(*) AS n " + _MISSING, {"project": project_id, "old": old, "new": new}
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def list_missing(
    conn: Conn, *, project_id: uuid.UUID, old: str, new: str, limit: int
) -> list[dict[str, Any]]:
    """The next `limit` items of the old space still to embed in the new one."""
    cur = await conn.execute(
        f"SELECT {_ITEM_COLUMNS} " + _MISSING + " ORDER BY k.document_version_id, k.chunk_index "
        "LIMIT %(limit)s",
        {"project": project_id, "old": old, "new": new, "limit": limit},
    )
    return list(await cur.fetchall())


async def insert_items(
    conn: Conn,
    *,
    items: Sequence[dict[str, Any]],
    vectors: Sequence[Sequence[float]],
    model: str,
    dim: int,
) -> None:
    """Copies of `items` embedded in the new space (idempotent on the unique chunk key)."""
    async with conn.cursor() as cur:
        await cur.executemany(
            f"INSERT INTO knowledge_items ({_ITEM_COLUMNS}, embedding, embedding_model, "
            "embedding_dim) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (document_version_id, embedding_model, chunk_index) DO NOTHING",
            [
                (
                    item["project_id"],
                    item["document_id"],
                    item["document_version_id"],
                    item["chunk_index"],
                    item["chunk_text"],
                    item["content_hash"],
                    Jsonb(item["metadata"]),
                    item["ts_config"],
                    np.asarray(vector, dtype=np.float32),
                    model,
                    dim,
                )
                for item, vector in zip(items, vectors, strict=True)
            ],
        )


async def switch_space(conn: Conn, *, project_id: uuid.UUID, model: str, dim: int) -> int:
    """Make `model` the project's space, drop every other space's items, bump the corpus
    generation (answer caches keyed on it go stale). Returns the items deleted."""
    await conn.execute(
        "UPDATE projects SET embedding_model = %s, embedding_dim = %s, "
        "corpus_generation = corpus_generation + 1, updated_at = now() WHERE id = %s",
        (model, dim, project_id),
    )
    cur = await conn.execute(
        "DELETE FROM knowledge_items WHERE project_id = %s AND embedding_model <> %s",
        (project_id, model),
    )
    return cur.rowcount
