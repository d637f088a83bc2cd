"""Embedding through the configured embedder: batching by count and token budget, the
PostgreSQL embedding cache keyed by (provider, model, sha256 of text), and embedding spaces
(a project's knowledge lives in one model + dimension; queries from another get a 409)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lorebase.db import Database
from lorebase.embedding import repository
from lorebase.errors import Conflict
from lorebase.providers.base import BadResponse, Embedder
from lorebase.providers.tokens import token_counter


def text_sha256(text: str) -> str:
    """The embedding cache key of a text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embedding_input(chunk_text: str, metadata: Mapping[str, Any] | None = None) -> str:
    """The text embedded for a knowledge item: its chunk, after its situating `context`
    (contextual retrieval) when the item's metadata has one. Ingestion and re-embedding both
    use it, so a re-embedded item means what the original meant."""
    context = (metadata or {}).get("context")
    if isinstance(context, str) and context.strip():
        return f"{context.strip()}\n\n{chunk_text}"
    return chunk_text


def plan_batches(
    texts: Sequence[str],
    *,
    max_batch: int,
    max_batch_tokens: int,
    count_tokens: Callable[[str], int] | None,
) -> list[list[int]]:
    """Indexes of `texts` grouped into calls of at most `max_batch` texts and
    `max_batch_tokens` tokens (a text over the budget goes alone). Texts are sorted by length
    first, so batches pad little; `count_tokens=None` skips the token budget."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index in order:
        cost = count_tokens(texts[index]) if count_tokens else 0
        if current and (len(current) >= max_batch or used + cost > max_batch_tokens):
            batches.append(current)
            current, used = [], 0
        current.append(index)
        used += cost
    if current:
        batches.append(current)
    return batches


def _needs_token_budget(embedder: Embedder) -> bool:
    # When a full batch of maximal inputs fits the budget, counting tokens is wasted work.
    return embedder.max_batch * embedder.max_input_tokens > embedder.max_batch_tokens


async def embed_texts(
    *, db: Database | None, embedder: Embedder, texts: Sequence[str]
) -> list[list[float]]:
    """Unit vectors for `texts`, in order. With `db`, vectors come from and go to the
    embedding cache, so identical text is never sent to the provider twice (pass `db=None` on
    paths that cache elsewhere, such as queries)."""
    if not texts:
        return []
    hashes = [text_sha256(text) for text in texts]
    unique = dict(zip(hashes, texts, strict=True))
    provider, model, dim = embedder.provider, embedder.model_id, embedder.dimension
    found: dict[str, list[float]] = {}
    if db is not None:
        async with db.connection() as conn:
            found = await repository.get_cached(
                conn, provider=provider, model=model, dim=dim, hashes=list(unique)
            )
    missing = [(sha, text) for sha, text in unique.items() if sha not in found]
    counter = token_counter(embedder) if _needs_token_budget(embedder) else None
    for batch in plan_batches(
        [text for _, text in missing],
        max_batch=embedder.max_batch,
        max_batch_tokens=embedder.max_batch_tokens,
        count_tokens=counter,
    ):
        vectors = await embedder.embed_batch([missing[i][1] for i in batch])
        if len(vectors) != len(batch) or any(len(v) != embedder.dimension for v in vectors):
            raise BadResponse(
                f"{embedder.provider} returned vectors that do not fit the "
                f"{embedder.model_id} ({embedder.dimension}-d) space",
                provider=embedder.provider,
            )
        entries = [(missing[i][0], vector) for i, vector in zip(batch, vectors, strict=True)]
        found.update(entries)
        if db is not None:
            async with db.connection() as conn:
                await repository.put_cached(
                    conn, provider=provider, model=model, dim=dim, entries=entries
                )
    return [found[sha] for sha in hashes]


class EmbeddingBatcher:
    """Embeds single texts (search queries) for concurrent callers, opportunistically batched:
    a text that arrives while the embedder is busy waits for the running call and goes out
    with the others that arrived meanwhile, in one call. An idle embedder is called at once,
    so a lone query never waits for company. One batch of 16 short queries costs the local
    model about a third of 16 single calls (bench/RESULTS.md)."""

    def __init__(self, embedder: Embedder, *, max_batch: int | None = None) -> None:
        self.embedder = embedder
        self.max_batch = max(1, min(max_batch or embedder.max_batch, embedder.max_batch))
        self._pending: list[tuple[str, asyncio.Future[list[float]]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def embed(self, text: str) -> list[float]:
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        live: list[tuple[str, asyncio.Future[list[float]]]] = []
        try:
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                live = [(text, future) for text, future in batch if not future.done()]
                if not live:
                    continue
                try:
                    vectors = await embed_texts(
                        db=None, embedder=self.embedder, texts=[text for text, _ in live]
                    )
                except Exception as exc:  # every caller of the batch gets the provider's error
                    for _, future in live:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), vector in zip(live, vectors, strict=True):
                    if not future.done():
                        future.set_result(vector)
        finally:
            # Only a cancelled drain (the loop shutting down) leaves futures undone here:
            # nobody may wait for them forever.
            for _, future in [*live, *self._pending]:
                future.cancel()
            self._pending.clear()


def _space_conflict(project_id: uuid.UUID, model: str, dim: int, embedder: Embedder) -> Conflict:
    return Conflict(
        f"this project's knowledge is embedded with {model!r} ({dim}-d) but the configured "
        f"embedding model is {embedder.model_id!r} ({embedder.dimension}-d); run "
        f"`lorebase reembed --project {project_id}` to move it to {embedder.model_id!r}, or "
        f"configure {model!r} again",
        extra={
            "project_embedding_model": model,
            "project_embedding_dim": dim,
            "configured_embedding_model": embedder.model_id,
            "configured_embedding_dim": embedder.dimension,
        },
    )


async def check_space(*, db: Database, project_id: uuid.UUID, embedder: Embedder) -> None:
    """Raise Conflict (409, naming both models) when the project's knowledge lives in another
    embedding space than `embedder`'s; a project without knowledge fits any."""
    async with db.connection() as conn:
        space = await repository.get_space(conn, project_id=project_id)
    model, dim = space.get("embedding_model"), space.get("embedding_dim")
    if model is not None and (model != embedder.model_id or dim != embedder.dimension):
        raise _space_conflict(project_id, model, int(dim or 0), embedder)


async def ensure_space(*, db: Database, project_id: uuid.UUID, embedder: Embedder) -> None:
    """Before storing vectors: give a new project `embedder`'s space, or raise Conflict
    when its knowledge lives in another one."""
    async with db.connection() as conn:
        await repository.claim_space(
            conn, project_id=project_id, model=embedder.model_id, dim=embedder.dimension
        )
    await check_space(db=db, project_id=project_id, embedder=embedder)
