"""extract -> chunk -> embed -> store, with per-stage progress.

The first three stages write nothing. `store_items` replaces a document's chunks inside the
caller's transaction (delete the previous version's, insert the new ones, bump the project's
corpus generation), so retrieval sees either the old document or the whole new one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

import numpy as np

from lorebase.content import FORMATS, text_format
from lorebase.content import sha256 as sha256  # re-exported: evaluation, runner
from lorebase.context import AppContext
from lorebase.db import Conn
from lorebase.documents import indexing as documents
from lorebase.documents.models import NewContent
from lorebase.documents.service import write_version
from lorebase.embedding.service import embed_texts, embedding_input, ensure_space
from lorebase.errors import Conflict
from lorebase.knowledge import repository
from lorebase.knowledge.chunking import Chunk, ChunkingConfig, chunk_document, fit_to_embedder
from lorebase.knowledge.context import contextual_metadata
from lorebase.knowledge.extract import Extracted, ExtractionError, extract
from lorebase.projects.service import bump_corpus_generation
from lorebase.providers.base import Embedder
from lorebase.providers.tokens import token_counter

log = logging.getLogger(__name__)

EMBED_BATCH = 128  # texts per progress step (the embedder batches further inside)


class JobCancelled(Exception):
    """Cancellation was requested; raised at the next progress checkpoint."""


class Progress(Protocol):
    async def advance(self, stage: str, *, done: int = 0, total: int = 0) -> None:
        """Add to a stage's counters; may raise `JobCancelled`."""


class NullProgress:
    async def advance(self, stage: str, *, done: int = 0, total: int = 0) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Source:
    """What to index: the original bytes (binary formats) or the text, and its provenance."""

    format: str
    data: bytes | None = None
    text: str | None = None
    language: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # source, url, repository, path...


@dataclass(slots=True)
class Prepared:
    extracted: Extracted
    chunks: list[Chunk]
    vectors: list[list[float]]
    model_id: str
    dimension: int
    meta: dict[str, Any]
    chunk_meta: list[dict[str, Any]] = field(default_factory=list)  # per chunk, as embedded


def format_for(document_type: str, version_metadata: dict[str, Any]) -> str:
    """The extraction format of a stored version (API documents may carry any type slug)."""
    stored = version_metadata.get("format")
    if isinstance(stored, str) and stored in FORMATS:
        return stored
    return text_format(document_type)


def chunking_config(ctx: AppContext, embedder: Embedder) -> ChunkingConfig:
    return fit_to_embedder(
        embedder.max_input_tokens,
        preferred_tokens=ctx.settings.chunk_max_tokens,
        overlap_ratio=ctx.settings.chunk_overlap_ratio,
    )


async def extract_source(source: Source, *, limit_seconds: float | None = None) -> Extracted:
    """Blocking parsers run in a thread: the event loop keeps serving requests. Past
    `limit_seconds` the job fails (the thread finishes in the background)."""
    work = asyncio.to_thread(
        extract, source.format, data=source.data, text=source.text, language=source.language
    )
    try:
        return await asyncio.wait_for(work, limit_seconds)
    except TimeoutError:
        raise ExtractionError(
            f"text extraction took longer than {limit_seconds:g}s (EXTRACT_TIMEOUT_SECONDS)"
        ) from None


async def _reusable_vectors(
    ctx: AppContext,
    document_id: UUID | None,
    embedder: Embedder,
    chunks: list[Chunk],
    texts: list[str],
) -> dict[str, list[float]]:
    """Vectors of the document's current chunks that the new version embeds again, by
    embedding input: a new version re-embeds only what changed. (Vectors are stored once,
    in knowledge_items: the embedding cache kept a second copy of each, bench/RESULTS.md.)"""
    if document_id is None:
        return {}
    async with ctx.db.connection() as conn:
        rows = await repository.current_vectors(
            conn,
            document_id=document_id,
            model=embedder.model_id,
            chunk_hashes=[sha256(chunk.text) for chunk in chunks],
        )
    wanted = set(texts)
    known: dict[str, list[float]] = {}
    for row in rows:
        text = embedding_input(row["chunk_text"], {"context": row["context"]})
        if text in wanted:
            vector = row["embedding"]  # pgvector's Vector (binary results) or an array
            values = vector.to_numpy() if hasattr(vector, "to_numpy") else vector
            known[text] = np.asarray(values, dtype=np.float32).tolist()
    return known


async def prepare(
    ctx: AppContext,
    *,
    source: Source,
    progress: Progress,
    project_id: UUID | None = None,
    document_id: UUID | None = None,
) -> Prepared:
    """Extract, chunk and embed (reusing the vectors of `document_id`'s unchanged chunks);
    raises `ExtractionError` for unreadable content and `ProviderError` subclasses when
    embedding fails."""
    embedder = ctx.embedder
    await progress.advance("extract", total=1)
    extracted = await extract_source(source, limit_seconds=ctx.settings.extract_timeout_seconds)
    await progress.advance("extract", done=1)
    chunks = await asyncio.to_thread(
        chunk_document,
        extracted,
        count_tokens=token_counter(embedder),
        config=chunking_config(ctx, embedder),
    )
    await progress.advance("chunk", done=len(chunks), total=len(chunks))
    await progress.advance("embed", total=len(chunks))
    vectors: list[list[float]] = []
    chunk_meta = [chunk.metadata() for chunk in chunks]
    if project_id is not None:
        # Contextual embeddings (a project setting): LLM-written contexts join the metadata.
        extra = await contextual_metadata(
            ctx,
            project_id=project_id,
            document_text=extracted.text,
            chunks=[c.text for c in chunks],
        )
        chunk_meta = [{**meta, **more} for meta, more in zip(chunk_meta, extra, strict=True)]
    texts = [
        embedding_input(chunk.text, meta) for chunk, meta in zip(chunks, chunk_meta, strict=True)
    ]
    known = await _reusable_vectors(ctx, document_id, embedder, chunks, texts)
    for start in range(0, len(texts), EMBED_BATCH):
        batch = texts[start : start + EMBED_BATCH]
        todo = [text for text in batch if text not in known]
        embedded = await embed_texts(db=None, embedder=embedder, texts=todo)
        fresh = dict(zip(todo, embedded, strict=True))
        vectors.extend(known[text] if text in known else fresh[text] for text in batch)
        await progress.advance("embed", done=len(batch))
    return Prepared(
        extracted=extracted,
        chunks=chunks,
        vectors=vectors,
        model_id=embedder.model_id,
        dimension=embedder.dimension,
        meta=dict(source.meta),
        chunk_meta=chunk_meta,
    )


async def store_items(
    conn: Conn,
    *,
    project_id: UUID,
    document_id: UUID,
    version_id: UUID,
    prepared: Prepared,
) -> int:
    """Replace the document's chunks with `prepared`'s, inside the caller's transaction."""
    project = await repository.lock_project_for_ingest(conn, project_id=project_id)
    if project is None:
        raise LookupError(f"project {project_id} is gone")
    if project["embedding_model"] not in (None, prepared.model_id):
        raise Conflict(
            f"the project's knowledge is embedded with {project['embedding_model']!r}, "
            f"not {prepared.model_id!r}"
        )
    await repository.delete_document_items(conn, document_id=document_id)
    base_meta = {key: value for key, value in prepared.meta.items() if value is not None}
    rows = [
        repository.ItemRow(
            chunk_index=chunk.index,
            chunk_text=chunk.text,
            content_hash=sha256(chunk.text),
            embedding=np.asarray(vector, dtype=np.float32),
            metadata={**base_meta, **meta},
        )
        for chunk, vector, meta in zip(
            prepared.chunks, prepared.vectors, prepared.chunk_meta, strict=True
        )
    ]
    await repository.insert_items(
        conn,
        project_id=project_id,
        document_id=document_id,
        document_version_id=version_id,
        embedding_model=prepared.model_id,
        embedding_dim=prepared.dimension,
        ts_config=project["text_search_config"],
        items=rows,
    )
    extraction_meta: dict[str, Any] = {"chunks": len(rows), "format": prepared.extracted.format}
    if prepared.extracted.title:
        extraction_meta["title"] = prepared.extracted.title
    extraction_meta.update(prepared.extracted.metadata)
    await documents.store_extracted_text(
        conn, version_id=version_id, text=prepared.extracted.text, metadata=extraction_meta
    )
    await bump_corpus_generation(conn, project_id=project_id)
    return len(rows)


async def index_version(
    ctx: AppContext, *, document_id: UUID, version_id: UUID, progress: Progress
) -> dict[str, Any]:
    """Index one stored version; a version that is no longer the latest is skipped."""
    async with ctx.db.transaction() as conn:
        latest = await documents.lock_latest(
            conn, document_id=document_id, version_id=version_id, with_content=True
        )
        if latest.skipped is not None:
            return {"skipped": latest.skipped}
        await documents.set_status(conn, document_id=document_id, status="processing")
    document, version = latest.document, latest.version
    assert document is not None
    assert version is not None
    await ensure_space(db=ctx.db, project_id=document["project_id"], embedder=ctx.embedder)
    meta = dict(version["metadata"] or {})
    source = Source(
        format=format_for(document["type"], meta),
        data=bytes(version["raw"]) if version["raw"] is not None else None,
        text=version["content"],
        language=meta.get("language"),
        meta=dict(meta.get("source") or {"source": document["name"]}),
    )
    prepared = await prepare(
        ctx,
        source=source,
        progress=progress,
        project_id=document["project_id"],
        document_id=document_id,
    )
    await progress.advance("store", total=len(prepared.chunks))
    async with ctx.db.transaction() as conn:
        latest = await documents.lock_latest(conn, document_id=document_id, version_id=version_id)
        if latest.skipped is not None:
            return {"skipped": latest.skipped}
        stored = await store_items(
            conn,
            project_id=document["project_id"],
            document_id=document_id,
            version_id=version_id,
            prepared=prepared,
        )
        await documents.set_status(
            conn,
            document_id=document_id,
            status="ready",
            metadata={"chunks": stored, **_title(prepared)},
            remove=["error"],
        )
    await progress.advance("store", done=stored)
    return {"version": version["version"], "chunks": stored}


def _title(prepared: Prepared) -> dict[str, Any]:
    return {"title": prepared.extracted.title} if prepared.extracted.title else {}


async def fail_version(
    ctx: AppContext, *, document_id: UUID, version_id: UUID, message: str
) -> None:
    """Mark the document failed if `version_id` is still its latest version; its chunks go
    too (retrieval only ever shows a document's latest version)."""
    async with ctx.db.transaction() as conn:
        latest = await documents.lock_latest(conn, document_id=document_id, version_id=version_id)
        if latest.document is None or latest.skipped is not None:
            return
        await documents.set_status(
            conn, document_id=document_id, status="failed", metadata={"error": message}
        )
        if await repository.delete_document_items(conn, document_id=document_id):
            await bump_corpus_generation(conn, project_id=latest.document["project_id"])


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """A page or repository file to create or update by its `source_uri`."""

    project_id: UUID
    source_uri: str
    name: str
    type: str
    source: Source
    content_hash: str
    size_bytes: int
    mime_type: str | None
    tags: list[str]
    metadata: dict[str, Any]
    created_by: UUID | None


async def upsert_source_document(
    ctx: AppContext, *, item: SourceDocument, progress: Progress
) -> tuple[UUID, str]:
    """Index a crawled page or repository file: unchanged content is skipped, changed content
    becomes the next minor version. Returns (document id, "added"|"updated"|"unchanged")."""
    async with ctx.db.connection() as conn:
        unchanged = await documents.unchanged_source(
            conn,
            project_id=item.project_id,
            source_uri=item.source_uri,
            content_hash=item.content_hash,
        )
    if unchanged is not None:
        return unchanged, "unchanged"
    await ensure_space(db=ctx.db, project_id=item.project_id, embedder=ctx.embedder)
    prepared = await prepare(ctx, source=item.source, progress=progress, project_id=item.project_id)
    async with ctx.db.transaction() as conn:
        written = await write_version(
            conn,
            project_id=item.project_id,
            source_uri=item.source_uri,
            name=item.name,
            type=item.type,
            tags=item.tags,
            metadata={**item.metadata, **_title(prepared)},
            content=NewContent(
                content_hash=item.content_hash,
                size_bytes=item.size_bytes,
                mime_type=item.mime_type,
                raw=item.source.data,
                metadata={
                    "format": item.source.format,
                    "language": item.source.language,
                    "source": item.source.meta,
                },
            ),
            created_by=item.created_by,
            status="ready",
        )
        document_id: UUID = written.document["id"]
        if written.version is None:
            return document_id, "unchanged"
        stored = await store_items(
            conn,
            project_id=item.project_id,
            document_id=document_id,
            version_id=written.version["id"],
            prepared=prepared,
        )
        await documents.set_status(
            conn, document_id=document_id, status="ready", metadata={"chunks": stored}
        )
    await progress.advance("store", done=stored, total=stored)
    return document_id, "added" if written.outcome == "added" else "updated"
