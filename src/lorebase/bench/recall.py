"""HNSW recall@k against exact search, and the latency of the app's own vector query."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from lorebase.bench import repository
from lorebase.db import Conn
from lorebase.retrieval.repository import (
    VectorQuery,
    filter_sql,
    set_ef_search,
    vector_candidates,
)
from lorebase.timing import sample_ms

Matrix = np.ndarray[Any, np.dtype[np.float32]]


def exact_top_k(
    vectors: Matrix, queries: Matrix, k: int, *, block: int = 200_000
) -> np.ndarray[Any, Any]:
    """Row indices of the k nearest `vectors` (cosine) for each query, nearest first."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_scores = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_index = np.zeros((len(q), 0), dtype=np.int64)
    for start in range(0, len(vectors), block):
        part = vectors[start : start + block]
        norms = np.linalg.norm(part, axis=1)
        scores = (q @ part.T) / np.clip(norms, 1e-12, None)
        scores_all = np.concatenate([best_scores, scores], axis=1)
        index_all = np.concatenate(
            [best_index, np.broadcast_to(np.arange(start, start + len(part)), scores.shape)],
            axis=1,
        )
        keep = np.argpartition(-scores_all, min(k, scores_all.shape[1] - 1), axis=1)[:, :k]
        best_scores = np.take_along_axis(scores_all, keep, axis=1)
        best_index = np.take_along_axis(index_all, keep, axis=1)
    order = np.argsort(-best_scores, axis=1)
    return np.take_along_axis(best_index, order, axis=1)


def _percentile(values: list[float], pct: float) -> float:
    return float(np.percentile(np.asarray(values), pct)) if values else 0.0


async def _search_at(
    conn: Conn, ef: int, project_id: uuid.UUID, *, model: str, dim: int, vector: Any, k: int
) -> list[tuple[uuid.UUID, float]]:
    """The server's vector search SQL, unfiltered, at `hnsw.ef_search` = `ef`."""
    params: dict[str, Any] = {}
    no_filters = filter_sql(document_ids=None, tags=None, types=None, metadata=None, params=params)
    async with conn.transaction():
        await set_ef_search(conn, ef_search=ef)
        query = VectorQuery(
            project_id=project_id,
            model=model,
            dim=dim,
            query_vector=vector,
            limit=k,
            filters=no_filters,
            params=params,
        )
        return await vector_candidates(conn, query)


async def measure_recall(
    *,
    database_url: str,
    project_id: str,
    model: str,
    dim: int,
    ids: list[uuid.UUID],
    vectors: Matrix,
    queries: Matrix,
    ef_values: tuple[int, ...],
    k: int = 10,
) -> dict[str, Any]:
    """Recall@k and per-query latency of `retrieval.repository.vector_candidates` (the SQL the
    server runs) at each `hnsw.ef_search`, against exact top-k computed in numpy. Three queries
    are also checked against PostgreSQL's exact scan, so the ground truth is the database's."""
    truth = exact_top_k(vectors, queries, k)
    truth_ids = [{ids[i] for i in row} for row in truth]
    pid = uuid.UUID(project_id)
    out: dict[str, Any] = {"k": k, "queries": len(queries), "vectors": len(ids), "by_ef": {}}
    async with repository.connect(database_url) as conn:
        agree = 0
        for q, expected in zip(queries[:3], truth_ids[:3], strict=False):
            exact = await repository.exact_neighbours(
                conn, project_id=pid, dim=dim, query_vector=q, limit=k
            )
            agree += len(set(exact) & expected)
        out["ground_truth_agreement"] = round(agree / (k * min(3, len(queries))), 3)
        for ef in ef_values:
            hits = 0
            latencies: list[float] = []
            for q, expected in zip(queries, truth_ids, strict=True):
                with sample_ms(latencies):
                    found = await _search_at(conn, ef, pid, model=model, dim=dim, vector=q, k=k)
                hits += len({row_id for row_id, _ in found} & expected)
            out["by_ef"][str(ef)] = {
                "recall": round(hits / (k * len(queries)), 4),
                "p50_ms": round(_percentile(latencies, 50), 2),
                "p95_ms": round(_percentile(latencies, 95), 2),
                "p99_ms": round(_percentile(latencies, 99), 2),
            }
    return out
