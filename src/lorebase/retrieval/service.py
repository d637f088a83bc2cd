"""Querying a project's knowledge: semantic or hybrid retrieval, re-ranking, agentic answers
with checked citations, and an answer cache that a knowledge change makes unreachable."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

import orjson

from lorebase.answering.prompts import NO_ANSWER
from lorebase.answering.synthesis import Answer, Passage, stream_answer, synthesize_answer
from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.embedding.service import EmbeddingBatcher, check_space
from lorebase.errors import AppError, ServiceUnavailable, problem_from
from lorebase.projects.schemas import ProjectAccess
from lorebase.projects.service import get_project_for
from lorebase.providers.base import ChatModel, ProviderError, Reranker
from lorebase.retrieval import repository
from lorebase.retrieval.frequency import Corpus, FrequencyMemo
from lorebase.retrieval.fulltext import search_fulltext
from lorebase.retrieval.fusion import weighted_rrf
from lorebase.retrieval.metrics import ANSWER_CACHE
from lorebase.retrieval.rerank import choose_reranker, rerank, reranker_id
from lorebase.retrieval.schemas import (
    CitationRead,
    QueryCreate,
    QueryEvent,
    QueryFilters,
    QueryRead,
    ResultRead,
)
from lorebase.retrieval.vector import Vector, embed_query, search_vector

log = logging.getLogger(__name__)

SearchMode = Literal["semantic", "fulltext", "hybrid"]
ANSWER_CACHE_VERSION = "2"  # 2: stored as QueryRead JSON without per-request fields


@dataclass(frozen=True)
class SearchTarget:
    """What retrieval needs to know about a project."""

    project_id: UUID
    text_search_config: str
    embedding_model: str | None
    embedding_dim: int | None
    # Bumped by every knowledge change: keys the lexical leg's document-frequency cache.
    corpus_generation: int = 0


@dataclass
class SearchOutcome:
    results: list[ResultRead]
    warnings: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    degraded: bool = False  # a provider failed: do not cache


@dataclass(frozen=True)
class Flags:
    hybrid: bool
    rerank: bool
    agentic: bool
    top_k: int


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


def target_of(project: ProjectAccess) -> SearchTarget:
    return SearchTarget(
        project_id=project.id,
        text_search_config=project.text_search_config,
        embedding_model=project.embedding_model,
        embedding_dim=project.embedding_dim,
        corpus_generation=project.corpus_generation,
    )


def _query_batcher(ctx: AppContext) -> EmbeddingBatcher:
    """One batcher per embedder and context: concurrent searches share embedder calls."""
    batchers: dict[int, EmbeddingBatcher] = ctx.extras.setdefault("query_batchers", {})
    batcher = batchers.get(id(ctx.embedder))
    if batcher is None or batcher.embedder is not ctx.embedder:
        batcher = batchers[id(ctx.embedder)] = EmbeddingBatcher(
            ctx.embedder, max_batch=ctx.settings.query_embedding_batch
        )
    return batcher


def _session_ef_search(ctx: AppContext) -> int | None:
    value = ctx.db.session_settings.get("hnsw.ef_search")
    return int(value) if value is not None else None


def _llm(ctx: AppContext) -> ChatModel | None:
    return ctx.llm


def _frequency_memo(ctx: AppContext) -> FrequencyMemo:
    """This process's LRU of document frequencies, in front of Redis."""
    memo: FrequencyMemo = ctx.extras.setdefault("frequency_memo", FrequencyMemo())
    return memo


def _reranker(ctx: AppContext) -> Reranker | None:
    """The configured reranker, built once per context (a cross-encoder loads a model)."""
    key = reranker_id(settings=ctx.settings, registry=ctx.registry, llm=_llm(ctx))
    cache: dict[str, Reranker | None] = ctx.extras.setdefault("rerankers", {})
    if key not in cache:
        cache[key] = choose_reranker(settings=ctx.settings, registry=ctx.registry, llm=_llm(ctx))
    return cache[key]


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
) -> SearchOutcome:
    """Retrieve `top_k` passages of the project's latest document versions.

    `semantic` is the HNSW leg alone, `fulltext` the text-search leg alone, `hybrid` both fused
    by weighted RRF. With `use_re_ranking` the best `rerank_candidates` are re-scored (a longer
    `top_k` keeps its tail in fused order). `use_query_cache=False` embeds the query even when
    Redis has its vector (the evaluation measures the full cost)."""
    settings = ctx.settings
    started = time.perf_counter()
    outcome = SearchOutcome(results=[])
    if target.embedding_model is None:
        # Nothing has been ingested into this project yet.
        outcome.timings_ms["total"] = _ms(started)
        return outcome
    model = target.embedding_model
    window = settings.rerank_candidates if use_re_ranking else 0
    pool = max(top_k, window)
    per_leg = max(pool, settings.retrieval_candidates) if mode == "hybrid" else pool
    params: dict[str, Any] = {}
    f = filters or QueryFilters()
    where = repository.filter_sql(
        document_ids=f.document_ids,
        tags=f.tags,
        types=f.types,
        metadata=f.metadata,
        params=params,
    )

    async def text_leg() -> list[tuple[UUID, float]]:
        leg_start = time.perf_counter()
        async with ctx.db.connection() as conn:
            hits = await search_fulltext(
                conn,
                cache=ctx.cache,
                memo=_frequency_memo(ctx),
                corpus=Corpus(target.project_id, model, target.corpus_generation),
                ts_config=target.text_search_config,
                query_text=query_text,
                operator=settings.fulltext_operator,
                rank=settings.fulltext_rank,
                candidate_budget=settings.fulltext_candidate_budget,
                limit=per_leg,
                filters=where,
                params=params,
            )
        outcome.timings_ms["fulltext"] = _ms(leg_start)
        return hits

    # The lexical leg needs no embedding: it runs while the query is embedded.
    text_task = asyncio.create_task(text_leg()) if mode in ("fulltext", "hybrid") else None
    vector: Vector | None = None
    vector_hits: list[tuple[UUID, float]] = []
    try:
        if mode in ("semantic", "hybrid"):
            embedder = ctx.embedder
            if (target.embedding_model, target.embedding_dim) != (
                embedder.model_id,
                embedder.dimension,
            ):
                # 409 naming both models: the project lives in another embedding space.
                await check_space(db=ctx.db, project_id=target.project_id, embedder=embedder)
            embed_start = time.perf_counter()
            try:
                vector = await embed_query(
                    cache=ctx.cache if use_query_cache else None,
                    embedder=embedder,
                    text=query_text,
                    batcher=_query_batcher(ctx),
                )
            except ProviderError as exc:
                if mode == "semantic":
                    raise ServiceUnavailable(
                        f"the embedding provider is unavailable: {exc}",
                        retry_after=int(exc.retry_after or 5),
                    ) from exc
                outcome.degraded = True
                outcome.warnings.append(
                    f"semantic leg skipped: embedding provider unavailable ({exc}); "
                    "results are from full-text search only"
                )
            outcome.timings_ms["embed"] = _ms(embed_start)
            if vector is not None:
                leg_start = time.perf_counter()
                async with ctx.db.connection() as conn:
                    vector_hits = await search_vector(
                        conn,
                        project_id=target.project_id,
                        model=model,
                        dim=len(vector),
                        query_vector=vector,
                        limit=per_leg,
                        ef_search=settings.hnsw_ef_search,
                        session_ef_search=_session_ef_search(ctx),
                        filters=where,
                        params=params,
                    )
                outcome.timings_ms["vector"] = _ms(leg_start)
        text_hits = await text_task if text_task is not None else []
    finally:
        if text_task is not None and not text_task.done():
            text_task.cancel()
            with contextlib.suppress(BaseException):
                await text_task

    fuse_start = time.perf_counter()
    if mode == "hybrid":
        fused = weighted_rrf(
            [
                ([i for i, _ in vector_hits], settings.hybrid_vector_weight),
                ([i for i, _ in text_hits], settings.hybrid_fulltext_weight),
            ],
            k=settings.rrf_k,
        )
        ranked = [i for i, _ in fused]
    elif mode == "semantic":
        ranked = [i for i, _ in vector_hits]
    else:
        ranked = [i for i, _ in text_hits]
    outcome.timings_ms["fuse"] = _ms(fuse_start)

    fetch_start = time.perf_counter()
    candidates = ranked[:pool]
    async with ctx.db.connection() as conn:
        rows = await repository.fetch_passages(
            conn,
            ids=candidates,
            dim=len(vector) if vector is not None else None,
            query_vector=vector,
        )
    outcome.timings_ms["fetch"] = _ms(fetch_start)
    text_rank = dict(text_hits)
    passages = [rows[i] for i in candidates if i in rows]
    rerank_scores: list[float | None] = [None] * len(passages)
    if use_re_ranking:
        rerank_start = time.perf_counter()
        head, tail = passages[:window], passages[window:]
        result = await rerank(
            reranker=_reranker(ctx),
            query=query_text,
            passages=[p["chunk_text"] for p in head],
        )
        outcome.warnings.extend(result.warnings)
        # A reranker that failed is worth a retry later: do not cache what it left behind.
        outcome.degraded = outcome.degraded or (
            bool(result.warnings) and result.model_id is not None
        )
        passages = [head[i] for i in result.order] + tail
        rerank_scores = [result.scores[i] for i in result.order] + [None] * len(tail)
        outcome.timings_ms["rerank"] = _ms(rerank_start)

    for row, score in zip(passages[:top_k], rerank_scores[:top_k], strict=True):
        similarity = row["similarity"]
        if similarity is None:  # full-text only: no query vector was computed
            similarity = text_rank.get(row["id"], 0.0)
        outcome.results.append(
            ResultRead(
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
    outcome.timings_ms["total"] = _ms(started)
    return outcome


def normalise_query(text: str) -> str:
    """The cache's notion of "the same question": NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def resolve_flags(ctx: AppContext, query: QueryCreate) -> Flags:
    settings = ctx.settings
    return Flags(
        hybrid=(
            settings.use_hybrid_search
            if query.use_hybrid_search is None
            else query.use_hybrid_search
        ),
        rerank=settings.use_re_ranking if query.use_re_ranking is None else query.use_re_ranking,
        agentic=(
            settings.use_agentic_rag if query.use_agentic_rag is None else query.use_agentic_rag
        ),
        top_k=query.top_k or settings.default_top_k,
    )


def answer_cache_key(
    ctx: AppContext, *, project: ProjectAccess, query: QueryCreate, flags: Flags
) -> str:
    """Project, corpus generation, normalised query, flags, filters, top_k and every model or
    setting that shapes the answer: any knowledge change moves to a new key."""
    settings = ctx.settings
    llm = _llm(ctx)
    parts = {
        "q": normalise_query(query.query_text),
        "flags": [flags.hybrid, flags.rerank, flags.agentic, flags.top_k],
        "filters": (query.filters or QueryFilters()).canonical(),
        "embedder": ctx.embedder.model_id,
        "llm": llm.model_id if (flags.agentic and llm is not None) else None,
        "reranker": (
            reranker_id(settings=settings, registry=ctx.registry, llm=llm) if flags.rerank else None
        ),
        "retrieval": [
            settings.retrieval_candidates,
            settings.rrf_k,
            settings.hybrid_vector_weight,
            settings.hybrid_fulltext_weight,
            settings.fulltext_operator,
            settings.fulltext_rank,
            settings.fulltext_candidate_budget,
            settings.rerank_candidates,
            settings.hnsw_ef_search,
            settings.answer_context_tokens,
            settings.answer_max_tokens,
        ],
        "project": [project.embedding_model, project.text_search_config],
    }
    digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()[:40]
    return ctx.cache.key(
        "answer", ANSWER_CACHE_VERSION, str(project.id), str(project.corpus_generation), digest
    )


@dataclass
class _Prepared:
    project: ProjectAccess
    flags: Flags
    key: str
    started: float
    query_id: UUID


async def _prepare(ctx: AppContext, principal: Principal, query: QueryCreate) -> _Prepared:
    started = time.perf_counter()
    project = await get_project_for(
        ctx.db, principal=principal, project_id=query.project_id, permission=Permission.READ
    )
    flags = resolve_flags(ctx, query)
    if flags.agentic and _llm(ctx) is None:
        raise ServiceUnavailable("no chat model is configured for use_agentic_rag")
    key = answer_cache_key(ctx, project=project, query=query, flags=flags)
    return _Prepared(project, flags, key, started, uuid.uuid4())


# A cached answer is the JSON of its QueryRead without the fields that differ per request, so a
# hit is served as those bytes with the three fields put in front: no parse, validation and
# re-serialisation of a payload that was validated when it was stored (bench/RESULTS.md).
_PER_REQUEST = frozenset({"query_id", "cached", "timings_ms"})
_STORED_PREFIX = b'{"results":'


async def _cached_json(ctx: AppContext, prep: _Prepared) -> bytes | None:
    """The cached answer for `prep` as the JSON bytes of a QueryRead, or None."""
    lookup = time.perf_counter()
    stored = await ctx.cache.get_bytes(prep.key)
    if stored is None or not stored.startswith(_STORED_PREFIX):
        ANSWER_CACHE.labels(result="miss").inc()
        return None
    ANSWER_CACHE.labels(result="hit").inc()
    head = orjson.dumps(
        {
            "query_id": prep.query_id,
            "cached": True,
            "timings_ms": {"cache": _ms(lookup), "total": _ms(prep.started)},
        }
    )
    return head[:-1] + b"," + stored[1:]


async def _cached(ctx: AppContext, prep: _Prepared) -> QueryRead | None:
    body = await _cached_json(ctx, prep)
    if body is None:
        return None
    try:
        return QueryRead.model_validate_json(body)
    except ValueError:
        return None


async def _store(ctx: AppContext, prep: _Prepared, response: QueryRead) -> None:
    await ctx.cache.set_bytes(
        prep.key,
        response.model_dump_json(exclude=set(_PER_REQUEST)).encode(),
        ttl=ctx.settings.query_cache_ttl_seconds,
    )


def _passages(results: list[ResultRead]) -> list[Passage]:
    return [Passage(r.id, r.chunk_text) for r in results]


def _citations(answer: Answer) -> list[CitationRead]:
    return [CitationRead(result_id=rid, quote=quote) for rid, quote in answer.citations]


async def run_query(*, ctx: AppContext, principal: Principal, query: QueryCreate) -> QueryRead:
    """Answer `POST /rag/query`: results (and an answer) for a project the caller may read."""
    prep = await _prepare(ctx, principal, query)
    hit = await _cached(ctx, prep)
    if hit is not None:
        return hit
    return await _answer(ctx, prep, query)


async def run_query_json(*, ctx: AppContext, principal: Principal, query: QueryCreate) -> bytes:
    """`run_query` as the JSON bytes of its QueryRead; a cached answer is served as stored."""
    prep = await _prepare(ctx, principal, query)
    hit = await _cached_json(ctx, prep)
    if hit is not None:
        return hit
    response = await _answer(ctx, prep, query)
    return response.model_dump_json().encode()


async def _answer(ctx: AppContext, prep: _Prepared, query: QueryCreate) -> QueryRead:
    """Search (and synthesize) for a cache miss; the answer is cached unless degraded."""
    flags = prep.flags
    outcome = await search(
        ctx,
        target=target_of(prep.project),
        query_text=query.query_text,
        mode="hybrid" if flags.hybrid else "semantic",
        top_k=flags.top_k,
        use_re_ranking=flags.rerank,
        filters=query.filters,
    )
    warnings, timings = list(outcome.warnings), dict(outcome.timings_ms)
    answer_text: str | None = None
    citations: list[CitationRead] = []
    degraded = outcome.degraded
    llm = _llm(ctx)
    if flags.agentic and llm is not None:
        answer_start = time.perf_counter()
        try:
            answer = await synthesize_answer(
                llm=llm,
                question=query.query_text,
                passages=_passages(outcome.results),
                budget_tokens=ctx.settings.answer_context_tokens,
                max_tokens=ctx.settings.answer_max_tokens,
            )
        except ProviderError as exc:
            degraded = True
            warnings.append(f"no answer synthesized: the chat model is unavailable ({exc})")
        else:
            answer_text, citations = answer.text, _citations(answer)
            warnings.extend(answer.warnings)
            degraded = degraded or answer.degraded
        timings["answer"] = _ms(answer_start)
    timings["total"] = _ms(prep.started)
    response = QueryRead(
        query_id=prep.query_id,
        results=outcome.results,
        total_results=len(outcome.results),
        synthesized_answer=answer_text,
        citations=citations,
        cached=False,
        warnings=warnings,
        timings_ms=timings,
    )
    if not degraded:
        await _store(ctx, prep, response)
    return response


def _error_event(exc: Exception) -> QueryEvent:
    return QueryEvent(event="error", data=problem_from(exc).body())


def _results_event(response: QueryRead) -> QueryEvent:
    return QueryEvent(
        event="results",
        data={
            "query_id": str(response.query_id),
            "results": [r.model_dump(mode="json") for r in response.results],
            "total_results": response.total_results,
        },
    )


def _done_event(response: QueryRead) -> QueryEvent:
    return QueryEvent(
        event="done",
        data={
            "query_id": str(response.query_id),
            "synthesized_answer": response.synthesized_answer,
            "cached": response.cached,
            "warnings": response.warnings,
            "timings_ms": response.timings_ms,
        },
    )


def _citations_event(citations: list[CitationRead]) -> QueryEvent:
    return QueryEvent(
        event="citations", data={"citations": [c.model_dump(mode="json") for c in citations]}
    )


async def stream_query(
    *, ctx: AppContext, principal: Principal, query: QueryCreate
) -> AsyncIterator[QueryEvent]:
    """Check access (errors raise here, before any event), then return the typed events:
    `results`, `delta`* and `citations` (agentic only), `done`; or `error` as the last event."""
    prep = await _prepare(ctx, principal, query)
    return _events(ctx, prep, query)


async def _events(
    ctx: AppContext, prep: _Prepared, query: QueryCreate
) -> AsyncIterator[QueryEvent]:
    try:
        hit = await _cached(ctx, prep)
        if hit is not None:
            yield _results_event(hit)
            if hit.synthesized_answer is not None:
                yield QueryEvent(event="delta", data={"text": hit.synthesized_answer})
                yield _citations_event(hit.citations)
            yield _done_event(hit)
            return
        flags = prep.flags
        outcome = await search(
            ctx,
            target=target_of(prep.project),
            query_text=query.query_text,
            mode="hybrid" if flags.hybrid else "semantic",
            top_k=flags.top_k,
            use_re_ranking=flags.rerank,
            filters=query.filters,
        )
        response = QueryRead(
            query_id=prep.query_id,
            results=outcome.results,
            total_results=len(outcome.results),
            warnings=list(outcome.warnings),
            timings_ms=dict(outcome.timings_ms),
        )
        yield _results_event(response)
        degraded = outcome.degraded
        llm = _llm(ctx)
        if flags.agentic and llm is not None:
            answer_start = time.perf_counter()
            final: Answer | None = None
            async for item in stream_answer(
                llm=llm,
                question=query.query_text,
                passages=_passages(outcome.results),
                budget_tokens=ctx.settings.answer_context_tokens,
                max_tokens=ctx.settings.answer_max_tokens,
            ):
                if isinstance(item, Answer):
                    final = item
                else:
                    yield QueryEvent(event="delta", data={"text": item})
            answer = final or Answer(text=NO_ANSWER)
            response.synthesized_answer = answer.text
            response.citations = _citations(answer)
            response.warnings.extend(answer.warnings)
            degraded = degraded or answer.degraded
            response.timings_ms["answer"] = _ms(answer_start)
            yield _citations_event(response.citations)
        response.timings_ms["total"] = _ms(prep.started)
        yield _done_event(response)
        if not degraded:
            await _store(ctx, prep, response)
    except Exception as exc:
        if not isinstance(exc, AppError | ProviderError):
            log.exception("streamed query failed")
        yield _error_event(exc)
