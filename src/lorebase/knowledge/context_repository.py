"""SQL of contextual embeddings: the cache of LLM-written chunk contexts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from lorebase.db import Conn


async def get_contexts(
    conn: Conn, *, model: str, document_sha256: str, chunk_hashes: Sequence[str]
) -> dict[str, str]:
    """Known contexts of these chunks of this document, written by `model`."""
    if not chunk_hashes:
        return {}
    cur = await conn.execute(
        "SELECT chunk_sha256, context FROM chunk_contexts "
        "WHERE model = %s AND document_sha256 = %s AND chunk_sha256 = ANY(%s)",
        (model, document_sha256, list(chunk_hashes)),
    )
    return {row["chunk_sha256"]: row["context"] for row in await cur.fetchall()}


async def put_contexts(
    conn: Conn, *, model: str, document_sha256: str, contexts: Sequence[tuple[str, str]]
) -> None:
    """Remember (chunk hash, context) pairs; an existing entry is kept."""
    if not contexts:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO chunk_contexts (model, document_sha256, chunk_sha256, context) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(model, document_sha256, sha, context) for sha, context in contexts],
        )


async def get_project_settings(conn: Conn, *, project_id: UUID) -> dict[str, Any]:
    """The project's `settings` JSON ({} when the project is gone)."""
    cur = await conn.execute("SELECT settings FROM projects WHERE id = %s", (project_id,))
    row = await cur.fetchone()
    return dict(row["settings"] or {}) if row else {}
