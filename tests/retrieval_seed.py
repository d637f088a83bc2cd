"""Knowledge for retrieval tests, written the way ingestion stores it (documents, versions and
embedded chunks from the real local embedder), without going through the upload pipeline."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb

from lorebase.auth.principal import Principal
from lorebase.auth.schemas import UserCreate
from lorebase.auth.service import register_user
from lorebase.context import AppContext
from lorebase.embedding.service import embed_texts
from lorebase.projects.schemas import ProjectCreate
from lorebase.projects.service import create_project


@dataclass(frozen=True)
class SeededDocument:
    id: uuid.UUID
    version_id: uuid.UUID
    chunk_ids: list[uuid.UUID]


async def make_owner(ctx: AppContext) -> tuple[Principal, uuid.UUID]:
    """A user and a project of theirs."""
    user = await register_user(
        ctx=ctx,
        data=UserCreate(username=f"rq_{uuid.uuid4().hex[:10]}", password="pw-" + "x" * 12),  # type: ignore[arg-type]
    )
    principal = Principal(user_id=user.id, username=user.username)
    async with ctx.db.transaction() as conn:
        project = await create_project(
            conn, principal=principal, data=ProjectCreate(name="retrieval test")
        )
    return principal, project.id


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def seed_document(
    ctx: AppContext,
    *,
    project_id: uuid.UUID,
    name: str,
    chunks: Sequence[str],
    type_: str = "markdown",
    tags: Sequence[str] = (),
    metadata: dict[str, Any] | None = None,
    chunk_metadata: dict[str, Any] | None = None,
) -> SeededDocument:
    """A document at version 1.0.0 with `chunks` embedded by `ctx.embedder`."""
    vectors = await embed_texts(db=None, embedder=ctx.embedder, texts=list(chunks))
    content = "\n\n".join(chunks)
    async with ctx.db.transaction() as conn:
        cur = await conn.execute(
            """INSERT INTO documents (project_id, name, type, tags, status, version,
                   content_hash, metadata)
               VALUES (%s, %s, %s, %s, 'ready', '1.0.0', %s, %s) RETURNING id""",
            (project_id, name, type_, list(tags), _sha(content), Jsonb(metadata or {})),
        )
        document_id = (await cur.fetchone())["id"]  # type: ignore[index]
        version_id = await _insert_version(conn, document_id, "1.0.0", content)
        chunk_ids = await _insert_chunks(
            ctx, conn, project_id, document_id, version_id, chunks, vectors, chunk_metadata
        )
        await _touch_project(ctx, conn, project_id)
    return SeededDocument(document_id, version_id, chunk_ids)


async def seed_new_version(
    ctx: AppContext,
    *,
    project_id: uuid.UUID,
    document_id: uuid.UUID,
    version: str,
    chunks: Sequence[str],
) -> SeededDocument:
    """A new latest version of a document; like the ingestion pipeline, its chunks replace
    the old version's in one transaction and the corpus generation moves."""
    vectors = await embed_texts(db=None, embedder=ctx.embedder, texts=list(chunks))
    content = "\n\n".join(chunks)
    async with ctx.db.transaction() as conn:
        version_id = await _insert_version(conn, document_id, version, content)
        await conn.execute("DELETE FROM knowledge_items WHERE document_id = %s", (document_id,))
        chunk_ids = await _insert_chunks(
            ctx, conn, project_id, document_id, version_id, chunks, vectors, None
        )
        await conn.execute(
            "UPDATE documents SET version = %s, content_hash = %s, updated_at = now() "
            "WHERE id = %s",
            (version, _sha(content), document_id),
        )
        await _touch_project(ctx, conn, project_id)
    return SeededDocument(document_id, version_id, chunk_ids)


async def _insert_version(conn: Any, document_id: uuid.UUID, version: str, content: str) -> Any:
    major, minor, patch = (int(p) for p in version.split("."))
    cur = await conn.execute(
        """INSERT INTO document_versions (document_id, version, major, minor, patch, content,
               content_hash, size_bytes)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (document_id, version, major, minor, patch, content, _sha(content), len(content)),
    )
    return (await cur.fetchone())["id"]


async def _insert_chunks(
    ctx: AppContext,
    conn: Any,
    project_id: uuid.UUID,
    document_id: uuid.UUID,
    version_id: uuid.UUID,
    chunks: Sequence[str],
    vectors: list[list[float]],
    chunk_metadata: dict[str, Any] | None,
) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    for index, (text, vector) in enumerate(zip(chunks, vectors, strict=True)):
        cur = await conn.execute(
            """INSERT INTO knowledge_items (project_id, document_id, document_version_id,
                   chunk_index, chunk_text, content_hash, embedding, embedding_model,
                   embedding_dim, metadata, ts_config)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                   (SELECT text_search_config FROM projects WHERE id = %s))
               RETURNING id""",
            (
                project_id,
                document_id,
                version_id,
                index,
                text,
                _sha(text),
                vector,
                ctx.embedder.model_id,
                ctx.embedder.dimension,
                Jsonb(chunk_metadata or {}),
                project_id,
            ),
        )
        ids.append((await cur.fetchone())["id"])
    return ids


async def _touch_project(ctx: AppContext, conn: Any, project_id: uuid.UUID) -> None:
    await conn.execute(
        """UPDATE projects SET embedding_model = %s, embedding_dim = %s,
               corpus_generation = corpus_generation + 1
           WHERE id = %s""",
        (ctx.embedder.model_id, ctx.embedder.dimension, project_id),
    )
