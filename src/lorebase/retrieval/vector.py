"""The dense leg: query embeddings (cached in Redis) and the nearest-chunk search, exact or
through the HNSW index as fits the project."""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class KnownVector:
    """The query's embedding as the caller already read it from the cache (`vector` None:
    not there), so that `embed_query` does not ask Redis again."""

    vector: Vector | None


async def embed_query(
    *,
    cache: Cache | None,
    embedder: Embedder,
    text: str,
    batcher: EmbeddingBatcher | None = None,
    known: KnownVector | None = None,
) -> Vector:
    """The query's embedding, from Redis when this model has embedded this text before
    (`cache=None` always embeds; `known`: the caller looked it up). With `batcher`,
    concurrent queries share embedder calls."""

    async def compute() -> Vector:
        if batcher is not None:
            return np.asarray(await batcher.embed(text), dtype=np.float32)
        (vector,) = await embed_texts(db=None, embedder=embedder, texts=[text])
        return np.asarray(vector, dtype=np.float32)

    if cache is None:
        return await compute()
    key = query_embedding_key(cache, model_id=embedder.model_id, text=text)
    if known is not None:
        cached = known.vector
    else:
        cached = await cache.get_vector(key, dimension=embedder.dimension)
    if cached is not None:
        QUERY_EMBEDDING_CACHE.labels(result="hit").inc()
        return cached
    QUERY_EMBEDDING_CACHE.labels(result="miss").inc()
    # Stored as float16; the miss ranks with the same rounded vector a later hit returns.
    stored: Vector = await cache.set_vector(key, await compute(), ttl=QUERY_EMBEDDING_TTL)
    return stored


# How many chunks a project holds, per (project, model), re-counted at most this often: the
# plan needs the order of magnitude, not the exact figure, and counting 100k rows costs ~10 ms.
SIZE_TTL_SECONDS = 60.0
_sizes: dict[tuple[UUID, str], tuple[float, int]] = {}

# Exact search reads every chunk of the project (its vector, and a sort). Measured on this
# machine by `EXPLAIN ANALYZE` (bench/RESULTS.md, "ANN that fits the project"), top-10/50:
# at 384-d exact costs about what the index does up to ~1,000 chunks (1.35 vs 0.9-1.5 ms) and
# 5x more at 3,000; a vector over ~2 kB (1536-d) is TOASTed and each row costs a detoast, so
# exact loses from 300 chunks on (2.0 vs 0.7-1.0 ms; 80 vs 4-20 ms at 3,000).
EXACT_ROWS = 1000
EXACT_ROWS_TOASTED = 100
TOAST_BYTES = 2000
# ef_search for the index: MIN_EF up to SMALL_INDEX chunks, then EF_PER_DOUBLING more per
# doubling of the project. Recall@10 at 100k x 384-d (bench hnsw-100k): 0.944 at ef 200, 0.978
# at ef 300, so 100k gets ~260 (>= 0.95 with margin); the configured HNSW_EF_SEARCH caps it.
MIN_EF = 40
SMALL_INDEX = 10_000
EF_PER_DOUBLING = 66


@dataclass(frozen=True)
class AnnPlan:
    """How one dense search runs: an exact scan, or the HNSW index at `ef_search`."""

    exact: bool
    ef_search: int


def plan_search(
    *, chunks: int, dim: int, limit: int, ef_ceiling: int, filtered_by_documents: bool = False
) -> AnnPlan:
    """Exact where it is cheaper (a small project, or a few documents named by the filter)
    and always right; otherwise the HNSW index with an ef_search that grows with the log of
    the project's size, at least `limit` (the index returns at most ef rows), at most
    `ef_ceiling` unless `limit` needs more. Other filters keep the index: iterative scans
    (`hnsw.iterative_scan`, set on every pooled connection) go on until `limit` rows pass."""
    exact_rows = EXACT_ROWS if 4 * dim + 8 <= TOAST_BYTES else EXACT_ROWS_TOASTED
    if chunks <= max(exact_rows, limit) or filtered_by_documents:
        return AnnPlan(exact=True, ef_search=0)
    grown = MIN_EF + EF_PER_DOUBLING * max(0.0, math.log2(chunks / SMALL_INDEX))
    ef = min(math.ceil(grown), ef_ceiling)
    return AnnPlan(exact=False, ef_search=min(1000, max(ef, limit)))


async def project_size(conn: Conn, *, project_id: UUID, model: str) -> int:
    """The project's chunk count for `model`, from this process's memo when recent."""
    key = (project_id, model)
    now = time.monotonic()
    found = _sizes.get(key)
    if found is not None and now - found[0] < SIZE_TTL_SECONDS:
        return found[1]
    count = await repository.count_chunks(conn, project_id=project_id, model=model)
    if len(_sizes) > 10_000:
        _sizes.clear()
    _sizes[key] = (now, count)
    return count


@dataclass
class DenseHits:
    """The dense leg's answer: (id, cosine distance) nearest first, and with `passages` each
    hit's passage by id, read by the same query."""

    hits: list[tuple[UUID, float]]
    passages: dict[UUID, dict[str, Any]] | None = None


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
    passages: bool = False,
) -> DenseHits:
    """Nearest chunks as (id, cosine distance), by the `plan_search` plan for this project;
    `ef_search` (the configured value) is the ceiling of the index's. The index plan runs in
    a transaction that sets its ef_search and forbids a sort locally: left to itself the
    planner scans every row at 1536-d even for thousands of chunks (65-85 ms against 4-20 ms
    through the index). `session_ef_search` (the pool's value) is kept for callers. With
    `passages` the hits come with their passages (semantic search needs no second query)."""
    chunks = await project_size(conn, project_id=project_id, model=model)
    plan = plan_search(
        chunks=chunks,
        dim=dim,
        limit=limit,
        ef_ceiling=ef_search,
        filtered_by_documents="f_document_ids" in params,
    )

    query = repository.VectorQuery(
        project_id=project_id,
        model=model,
        dim=dim,
        query_vector=query_vector,
        limit=limit,
        filters=filters,
        params=params,
        exact=plan.exact,
    )

    async def candidates() -> DenseHits:
        if not passages:
            return DenseHits(await repository.vector_candidates(conn, query))
        rows = await repository.vector_passages(conn, query)
        hits = [(row["id"], float(row["distance"])) for row in rows]
        return DenseHits(hits, {row["id"]: row for row in rows})

    if plan.exact:
        return await candidates()
    # Pipelined: the settings and the query go out together, one round trip. On an autocommit
    # connection (every pooled one) both run in the pipeline's one implicit transaction (one
    # Sync), so the local settings hold for the query and end with it: no BEGIN/COMMIT, which
    # cost a third of the leg's client CPU. Inside a caller's transaction, a nested one.
    async with conn.pipeline(), _local_scope(conn):
        await repository.use_hnsw_index(conn, ef_search=plan.ef_search)
        return await candidates()


def _local_scope(conn: Conn) -> contextlib.AbstractAsyncContextManager[object]:
    """Where `set_config(..., true)` ends: the pipeline's implicit transaction when the
    connection autocommits, else a savepoint of the caller's transaction."""
    return contextlib.nullcontext() if conn.autocommit else conn.transaction()
