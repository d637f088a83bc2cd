"""The search engine: a project's passages for a query, by meaning, by words, or both fused,
optionally re-ranked. `search` reads top-down: plan → text leg ∥ vector leg → fuse → hydrate
→ rerank → results, each step a small function below it."""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from uuid import UUID

from lorebase.context import AppContext
from lorebase.db import Conn, SearchRoute
from lorebase.embedding.service import EmbeddingBatcher, check_space
from lorebase.errors import ServiceUnavailable
from lorebase.projects.schemas import ProjectAccess
from lorebase.providers.base import ProviderError, Reranker
from lorebase.retrieval import repository
from lorebase.retrieval.frequency import Corpus
from lorebase.retrieval.fulltext import search_fulltext
from lorebase.retrieval.fusion import fuse_legs
from lorebase.retrieval.rerank import choose_reranker, rerank, reranker_id
from lorebase.retrieval.schemas import QueryFilters, ResultRead
from lorebase.retrieval.vector import (
    DenseHits,
    KnownVector,
    Vector,
    embed_query,
    search_vector,
)
from lorebase.settings import Settings
from lorebase.timing import Timer

SearchMode = Literal["semantic", "fulltext", "hybrid"]
Hits = list[tuple[UUID, float]]
Row = dict[str, Any]


@dataclass(frozen=True)
class SearchTarget:
    """What retrieval needs to know about a project."""

    project_id: UUID
    text_search_config: str
    embedding_model: str | None
    embedding_dim: int | None
    # Bumped by every knowledge change: keys the lexical leg's document-frequency cache.
    corpus_generation: int = 0
    # Which server this request's searches read from, chosen once (DATABASE_REPLICA_URLS).
    route: SearchRoute = field(default_factory=SearchRoute, compare=False)


@dataclass
class SearchOutcome:
    results: list[ResultRead]
    warnings: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    degraded: bool = False  # a provider failed: do not cache


def target_of(project: ProjectAccess) -> SearchTarget:
    """The search target of a project the caller may read."""
    return SearchTarget(
        project_id=project.id,
        text_search_config=project.text_search_config,
        embedding_model=project.embedding_model,
        embedding_dim=project.embedding_dim,
        corpus_generation=project.corpus_generation,
    )


@dataclass(frozen=True)
class _Plan:
    """One search's inputs and candidate budgets."""

    target: SearchTarget
    model: str
    query_text: str
    mode: SearchMode
    top_k: int
    window: int  # passages the reranker sees (0: no re-ranking)
    pool: int  # passages hydrated
    per_leg: int  # candidates each leg returns
    where: repository.Filters
    params: dict[str, Any]
    use_query_cache: bool
    known_vector: KnownVector | None = None


@dataclass
class _Legs:
    text_hits: Hits = field(default_factory=list)
    vector_hits: Hits = field(default_factory=list)
    vector: Vector | None = None
    passages: dict[UUID, Row] | None = None  # read with the vector hits (semantic mode)


async def search(
    ctx: AppContext,
    *,
    target: SearchTarget,
    query_text: str,
    mode: SearchMode,
    top_k: int,
    use_re_ranking: bool = False,
    filters: QueryFilters | None = None,
    use_query_cache: bool = True,
    known_vector: KnownVector | None = None,
) -> SearchOutcome:
    """Retrieve `top_k` passages of the project's latest document versions.

    `semantic` is the HNSW leg alone, `fulltext` the text-search leg alone, `hybrid` both fused
    by weighted RRF. With `use_re_ranking` the best `rerank_candidates` are re-scored (a longer
    `top_k` keeps its tail in fused order). `use_query_cache=False` embeds the query even when
    Redis has its vector (the evaluation measures the full cost); `known_vector`: the
    caller read the cache for it."""
    timer = Timer()
    outcome = SearchOutcome(results=[], timings_ms=timer.timings_ms)
    model = target.embedding_model
    if model is None:  # nothing has been ingested into this project yet
        timer.stop()
        return outcome
    plan = _plan(
        ctx, target, model, query_text, mode, top_k, use_re_ranking, filters, use_query_cache
    )
    plan = replace(plan, known_vector=known_vector)
    legs = await _run_legs(ctx, plan, outcome, timer)
    with timer.span("fuse"):
        ranked = _fuse(ctx, plan.mode, legs, query_text)
    with timer.span("fetch"):
        passages = await _hydrate(ctx, plan.target, ranked[: plan.pool], legs)
    passages, scores = await _rerank(ctx, plan, passages, outcome, timer)
    outcome.results = _results(passages[:top_k], scores[:top_k], dict(legs.text_hits))
    timer.stop()
    return outcome


def _plan(
    ctx: AppContext,
    target: SearchTarget,
    model: str,
    query_text: str,
    mode: SearchMode,
    top_k: int,
    use_re_ranking: bool,
    filters: QueryFilters | None,
    use_query_cache: bool,
) -> _Plan:
    """Candidate budgets (the reranker's window, the hydrated pool, each leg's share) and the
    filters as one SQL condition both legs share."""
    settings = ctx.settings
    window = settings.rerank_candidates if use_re_ranking else 0
    pool = max(top_k, window)
    params: dict[str, Any] = {}
    f = filters or QueryFilters()
    where = repository.filter_sql(
        document_ids=f.document_ids, tags=f.tags, types=f.types, metadata=f.metadata, params=params
    )
    return _Plan(
        target=target,
        model=model,
        query_text=query_text,
        mode=mode,
        top_k=top_k,
        window=window,
        pool=pool,
        per_leg=hybrid_candidates(settings, top_k=top_k, pool=pool) if mode == "hybrid" else pool,
        where=where,
        params=params,
        use_query_cache=use_query_cache,
    )


def hybrid_candidates(settings: Settings, *, top_k: int, pool: int) -> int:
    """Candidates each hybrid leg returns: RETRIEVAL_CANDIDATES_PER_RESULT per result asked
    for, at most RETRIEVAL_CANDIDATES, never fewer than the passages hydrated."""
    wanted = settings.retrieval_candidates_per_result * top_k
    return max(pool, min(settings.retrieval_candidates, wanted))


async def _run_legs(ctx: AppContext, plan: _Plan, outcome: SearchOutcome, timer: Timer) -> _Legs:
    """Both legs of the mode; the lexical one needs no embedding, so it runs while the query
    is embedded."""
    legs = _Legs()
    text_task = (
        asyncio.create_task(_text_leg(ctx, plan, timer)) if plan.mode != "semantic" else None
    )
    try:
        if plan.mode != "fulltext":
            legs.vector = await _embed(ctx, plan, outcome, timer)
            if legs.vector is not None:
                dense = await _vector_leg(ctx, plan, legs.vector, timer)
                legs.vector_hits, legs.passages = dense.hits, dense.passages
        if text_task is not None:
            legs.text_hits = await text_task
    finally:
        if text_task is not None and not text_task.done():
            text_task.cancel()
            with contextlib.suppress(BaseException):
                await text_task
    return legs


async def _text_leg(ctx: AppContext, plan: _Plan, timer: Timer) -> Hits:
    """Full-text candidates as (id, rank), best first."""
    settings = ctx.settings
    target = plan.target
    with timer.span("fulltext"):
        async with _reader(ctx, target) as conn:
            return await search_fulltext(
                conn,
                cache=ctx.cache,
                memo=ctx.frequency_memo,
                corpus=Corpus(target.project_id, plan.model, target.corpus_generation),
                ts_config=target.text_search_config,
                query_text=plan.query_text,
                operator=settings.fulltext_operator,
                rank=settings.fulltext_rank,
                candidate_budget=settings.fulltext_candidate_budget,
                limit=plan.per_leg,
                filters=plan.where,
                params=plan.params,
            )


async def _embed(
    ctx: AppContext, plan: _Plan, outcome: SearchOutcome, timer: Timer
) -> Vector | None:
    """The query's vector; None (and a degraded outcome) when hybrid can do without it."""
    embedder, target = ctx.embedder, plan.target
    if (target.embedding_model, target.embedding_dim) != (embedder.model_id, embedder.dimension):
        # 409 naming both models: the project lives in another embedding space.
        await check_space(db=ctx.db, project_id=target.project_id, embedder=embedder)
    with timer.span("embed"):
        try:
            return await embed_query(
                cache=ctx.cache if plan.use_query_cache else None,
                embedder=embedder,
                text=plan.query_text,
                batcher=_query_batcher(ctx),
                known=plan.known_vector,
            )
        except ProviderError as exc:
            if plan.mode == "semantic":
                raise ServiceUnavailable(
                    f"the embedding provider is unavailable: {exc}",
                    retry_after=int(exc.retry_after or 5),
                ) from exc
            outcome.degraded = True
            outcome.warnings.append(
                f"semantic leg skipped: embedding provider unavailable ({exc}); "
                "results are from full-text search only"
            )
            return None


async def _vector_leg(ctx: AppContext, plan: _Plan, vector: Vector, timer: Timer) -> DenseHits:
    """Nearest chunks by the HNSW index as (id, cosine distance); in semantic mode with their
    passages (what is hydrated is exactly these hits)."""
    with timer.span("vector"):
        async with _reader(ctx, plan.target) as conn:
            return await search_vector(
                conn,
                project_id=plan.target.project_id,
                model=plan.model,
                dim=len(vector),
                query_vector=vector,
                limit=plan.per_leg,
                ef_search=ctx.settings.hnsw_ef_search,
                session_ef_search=_session_ef_search(ctx),
                filters=plan.where,
                params=plan.params,
                passages=plan.mode == "semantic" and plan.per_leg == plan.pool,
            )


def _fuse(ctx: AppContext, mode: SearchMode, legs: _Legs, query_text: str) -> list[UUID]:
    """Chunk ids best first: one leg's order, or both fused (HYBRID_FUSION)."""
    if mode == "semantic":
        return [i for i, _ in legs.vector_hits]
    if mode == "fulltext":
        return [i for i, _ in legs.text_hits]
    settings = ctx.settings
    return fuse_legs(
        query_text,
        legs.vector_hits,
        legs.text_hits,
        method=settings.hybrid_fusion,
        vector_weight=settings.hybrid_vector_weight,
        fulltext_weight=settings.hybrid_fulltext_weight,
        rrf_k=settings.rrf_k,
        adaptive_weight=settings.hybrid_keyword_fulltext_share,
        lexical_confidence=settings.hybrid_lexical_confidence,
    )


def _reader(ctx: AppContext, target: SearchTarget) -> AbstractAsyncContextManager[Conn]:
    """A read replica that has the project's corpus generation (DATABASE_REPLICA_URLS), else
    the primary: never staler than the caller's own writes."""
    return ctx.db.search_connection(
        project_id=target.project_id, generation=target.corpus_generation, route=target.route
    )


async def _hydrate(
    ctx: AppContext, target: SearchTarget, candidates: list[UUID], legs: _Legs
) -> list[Row]:
    """The candidates' passages in rank order (a chunk deleted meanwhile drops out)."""
    rows = legs.passages
    if rows is not None and all(i in rows for i in candidates):
        return [rows[i] for i in candidates]
    vector = legs.vector
    async with _reader(ctx, target) as conn:
        rows = await repository.fetch_passages(
            conn,
            ids=candidates,
            dim=len(vector) if vector is not None else None,
            query_vector=vector,
        )
    return [rows[i] for i in candidates if i in rows]


async def _rerank(
    ctx: AppContext, plan: _Plan, passages: list[Row], outcome: SearchOutcome, timer: Timer
) -> tuple[list[Row], list[float | None]]:
    """The window re-ordered by the reranker, the tail after it in fused order; no scores
    without re-ranking."""
    if not plan.window:
        return passages, [None] * len(passages)
    head, tail = passages[: plan.window], passages[plan.window :]
    with timer.span("rerank"):
        result = await rerank(
            reranker=reranker_for(ctx),
            query=plan.query_text,
            passages=[p["chunk_text"] for p in head],
        )
    outcome.warnings.extend(result.warnings)
    # A reranker that failed is worth a retry later: do not cache what it left behind.
    outcome.degraded = outcome.degraded or (bool(result.warnings) and result.model_id is not None)
    ordered = [head[i] for i in result.order] + tail
    scores = [result.scores[i] for i in result.order] + [None] * len(tail)
    return ordered, scores


def _results(
    passages: list[Row], scores: list[float | None], text_rank: dict[UUID, float]
) -> list[ResultRead]:
    """The response's results; full-text-only passages report their text rank as similarity."""
    results = []
    for row, score in zip(passages, scores, strict=True):
        similarity = row["similarity"]
        if similarity is None:  # full-text only: no query vector was computed
            similarity = text_rank.get(row["id"], 0.0)
        results.append(
            ResultRead.model_construct(  # our own rows: typed by the schema, not re-validated
                id=row["id"],
                document_id=row["document_id"],
                document_name=row["document_name"],
                version=row["version"],
                chunk_text=row["chunk_text"],
                similarity_score=round(float(similarity), 6),
                rerank_score=None if score is None else round(score, 6),
                metadata=row["metadata"] or {},
            )
        )
    return results


def reranker_for(ctx: AppContext) -> Reranker | None:
    """The configured reranker, built once per context (a cross-encoder loads a model)."""
    key = reranker_id(settings=ctx.settings, registry=ctx.registry, llm=ctx.llm)
    if key not in ctx.rerankers:
        ctx.rerankers[key] = choose_reranker(
            settings=ctx.settings, registry=ctx.registry, llm=ctx.llm
        )
    return ctx.rerankers[key]


def _query_batcher(ctx: AppContext) -> EmbeddingBatcher:
    """One batcher per embedder and context: concurrent searches share embedder calls."""
    batchers = ctx.query_batchers
    batcher = batchers.get(id(ctx.embedder))
    if batcher is None or batcher.embedder is not ctx.embedder:
        batcher = batchers[id(ctx.embedder)] = EmbeddingBatcher(
            ctx.embedder, max_batch=ctx.settings.query_embedding_batch
        )
    return batcher


def _session_ef_search(ctx: AppContext) -> int | None:
    value = ctx.db.session_settings.get("hnsw.ef_search")
    return int(value) if value is not None else None


async def count_chunks(ctx: AppContext, *, project_id: UUID) -> int:
    """How many chunks the project holds (every embedding model)."""
    async with ctx.db.connection() as conn:
        return await repository.count_items(conn, project_id=project_id)
