"""Contextual embeddings: each chunk is embedded after a short LLM-written sentence that
situates it in its document ("From the pdb manual, the section on breakpoints: ...").

Contexts are written in batches (one prompt per `batch_size` chunks), cached by (model,
document sha256, chunk sha256) in `chunk_contexts`, and never block ingestion: when the chat
model is unavailable, not generative, or answers without a line for a chunk, that chunk is
embedded as it is and its metadata says so. The returned metadata is merged into each chunk's
metadata; `lorebase.embedding.service.embedding_input(chunk_text, metadata)` then builds the
text to embed (the `context` key), at ingestion and at re-embedding alike.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from lorebase.context import AppContext
from lorebase.db import Database
from lorebase.knowledge import context_repository as repository
from lorebase.providers.base import ChatModel, Message, ProviderError, ProviderUnavailable

log = logging.getLogger(__name__)

SETTING = "contextual_embeddings"
MAX_CONTEXT_CHARS = 400
_LINE = re.compile(r"^\s*\[(\d{1,3})\]\s*(.+?)\s*$")

CONTEXT_INSTRUCTIONS = (
    "You situate chunks of a document for search. For each numbered chunk, write one short "
    "sentence (at most 40 words) saying what the document is and where this chunk fits in it, "
    "to be prepended to the chunk before it is embedded. Reply with one line per chunk, "
    "starting with its number in square brackets, for example: [1] From the X guide, the "
    "section on Y. Write nothing else."
)


def context_messages(document_excerpt: str, chunks: Sequence[str]) -> list[Message]:
    """The contextual-embedding prompt: the document (excerpt), then numbered chunks."""
    lines = ["Document:", document_excerpt.strip(), "", "Chunks:"]
    for number, chunk in enumerate(chunks, start=1):
        lines.append(f"[{number}] " + " ".join(chunk.split()))
    return [Message("system", CONTEXT_INSTRUCTIONS), Message("user", "\n".join(lines))]


def contextual_embeddings_enabled(project_settings: Mapping[str, Any] | None) -> bool:
    """The project setting `{"contextual_embeddings": true}`."""
    return bool((project_settings or {}).get(SETTING, False))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _excerpt(document_text: str, chunk: str, *, max_chars: int) -> str:
    """The document's opening, plus the text just before the batch when it lies further on."""
    if len(document_text) <= max_chars:
        return document_text
    head = document_text[: max_chars // 2]
    at = document_text.find(chunk[:200])
    if at <= len(head):
        return document_text[:max_chars]
    before = document_text[max(len(head), at - max_chars // 2) : at]
    return f"{head}\n[...]\n{before}"


def parse_contexts(text: str, count: int) -> dict[int, str]:
    """`[n] context` lines -> {index: context}; other lines and unknown numbers are ignored."""
    found: dict[int, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        number = int(match.group(1))
        context = " ".join(match.group(2).split())[:MAX_CONTEXT_CHARS]
        if 1 <= number <= count and number - 1 not in found and context:
            found[number - 1] = context
    return found


def _fallback(reason: str) -> dict[str, Any]:
    return {"contextualized": False, "context_fallback": reason}


async def contextualize_chunks(
    *,
    db: Database,
    llm: ChatModel,
    document_text: str,
    chunks: Sequence[str],
    batch_size: int = 8,
    max_document_chars: int = 6000,
) -> list[dict[str, Any]]:
    """Metadata to merge into each chunk: `{"context": str, "contextualized": True}`, or
    `{"contextualized": False, "context_fallback": reason}` when the chunk is embedded plain."""
    if not chunks:
        return []
    if not bool(getattr(llm, "generative", True)):
        return [_fallback("no generative chat model is configured")] * len(chunks)
    document_sha = _sha(document_text)
    hashes = [_sha(chunk) for chunk in chunks]
    async with db.connection() as conn:
        known = await repository.get_contexts(
            conn, model=llm.model_id, document_sha256=document_sha, chunk_hashes=hashes
        )
    out: list[dict[str, Any] | None] = [
        {"context": known[h], "contextualized": True} if h in known else None for h in hashes
    ]
    missing = [i for i, meta in enumerate(out) if meta is None]
    down: str | None = None
    for start in range(0, len(missing), batch_size):
        batch = missing[start : start + batch_size]
        if down is not None:
            written: dict[int, dict[str, Any]] = {i: _fallback(down) for i in batch}
        else:
            excerpt = _excerpt(document_text, chunks[batch[0]], max_chars=max_document_chars)
            written, down = await _write_batch(llm, excerpt, [chunks[i] for i in batch], batch)
        for i, meta in written.items():
            out[i] = meta
        fresh = [(hashes[i], str(m["context"])) for i, m in written.items() if m["contextualized"]]
        if fresh:
            async with db.connection() as conn:
                await repository.put_contexts(
                    conn, model=llm.model_id, document_sha256=document_sha, contexts=fresh
                )
    return [meta if meta is not None else _fallback("not processed") for meta in out]


async def _write_batch(
    llm: ChatModel, excerpt: str, texts: list[str], batch: list[int]
) -> tuple[dict[int, dict[str, Any]], str | None]:
    """Metadata of one batch of chunks (by chunk index), and why the model is down if it is."""
    try:
        completion = await llm.complete(
            context_messages(excerpt, texts), max_tokens=60 * len(texts) + 20
        )
    except ProviderUnavailable as exc:
        # The model is down: do not wait on it again for the rest of this document.
        down = f"chat model unavailable: {exc}"
        log.warning("contextual embeddings fell back", extra={"reason": down})
        return {i: _fallback(down) for i in batch}, down
    except ProviderError as exc:
        return {i: _fallback(f"chat model error: {exc}") for i in batch}, None
    contexts = parse_contexts(completion.text, len(batch))
    written: dict[int, dict[str, Any]] = {}
    for position, i in enumerate(batch):
        context = contexts.get(position)
        if context is None:
            written[i] = _fallback("the chat model wrote no context for this chunk")
        else:
            written[i] = {"context": context, "contextualized": True}
    return written, None


async def contextual_metadata(
    ctx: AppContext, *, project_id: UUID, document_text: str, chunks: Sequence[str]
) -> list[dict[str, Any]]:
    """What ingestion merges into each chunk's metadata before embedding: contexts when the
    project has `{"contextual_embeddings": true}` in its settings, else nothing."""
    async with ctx.db.connection() as conn:
        settings = await repository.get_project_settings(conn, project_id=project_id)
    if not contextual_embeddings_enabled(settings):
        return [{} for _ in chunks]
    return await contextualize_chunks(
        db=ctx.db, llm=ctx.llm, document_text=document_text, chunks=chunks
    )
