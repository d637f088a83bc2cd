"""The dense leg: query embeddings (cached in Redis) and the HNSW search."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import numpy as np

from lorebase.cache import Cache, text_key
from lorebase.db import Conn
from lorebase.embedding.service import EmbeddingBatcher, embed_texts
from lorebase.providers.base import Embedder
from lorebase.retrieval import repository
from lorebase.retrieval.metrics import QUERY_EMBEDDING_CACHE

QUERY_EMBEDDING_TTL = 7 * 86400

Vector = np.ndarray[Any, np.dtype[np.float32]]


def query_embedding_key(cache: Cache, *, model_id: str, text: str) -> str:
    """Redis key of a query embedding: the embedding model id + a hash of the exact text."""
    return cache.key("qemb", model_id, text_key(text))


async def embed_query(
    *,
    cache: Cache | None,
    embedder: Embedder,
    text: str,
    batcher: EmbeddingBatcher | None = None,
) -> Vector:
    """The query's embedding, from Redis when this model has embedded this text before
    (`cache=None` always embeds). With `batcher`, concurrent queries share embedder calls."""

    async def compute() -> Vector:
        if batcher is not None:
            return np.asarray(await batcher.embed(text), dtype=np.float32)
        (vector,) = await embed_texts(db=None, embedder=embedder, texts=[text])
        return np.asarray(vector, dtype=np.float32)

    if cache is None:
        return await compute()
    key = query_embedding_key(cache, model_id=embedder.model_id, text=text)
    cached = await cache.get_vector(key, dimension=embedder.dimension)
    if cached is not None:
        QUERY_EMBEDDING_CACHE.labels(result="hit").inc()
        return cached
    QUERY_EMBEDDING_CACHE.labels(result="miss").inc()
    # Stored as float16; the miss ranks with the same rounded vector a later hit returns.
    stored: Vector = await cache.set_vector(key, await compute(), ttl=QUERY_EMBEDDING_TTL)
    return stored


async def search_vector(
    conn: Conn,
    *,
    project_id: UUID,
    model: str,
    dim: int,
    query_vector: Vector,
    limit: int,
    ef_search: int,
    session_ef_search: int | None,
    filters: repository.Filters,
    params: dict[str, Any],
) -> list[tuple[UUID, float]]:
    """Nearest chunks as (id, cosine distance). `session_ef_search` is what the connection
    already has (the pool sets the configured value); only a different one costs a
    transaction for `SET LOCAL`."""
    # The index only helps when ef_search covers the candidates asked for.
    wanted = min(1000, max(ef_search, limit))

    async def candidates() -> list[tuple[UUID, float]]:
        return await repository.vector_candidates(
            conn,
            project_id=project_id,
            model=model,
            dim=dim,
            query_vector=query_vector,
            limit=limit,
            filters=filters,
            params=params,
        )

    if wanted == session_ef_search:
        return await candidates()
    async with conn.transaction():
        await repository.set_ef_search(conn, ef_search=wanted)
        return await candidates()
