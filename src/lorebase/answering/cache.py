"""The answer cache: a QueryRead stored as JSON under a key that every knowledge change, flag,
model or setting that shapes the answer moves, so a stale answer is unreachable."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from uuid import UUID

import orjson

from lorebase.context import AppContext
from lorebase.projects.schemas import ProjectAccess
from lorebase.retrieval.metrics import ANSWER_CACHE
from lorebase.retrieval.rerank import reranker_id
from lorebase.retrieval.schemas import QueryCreate, QueryFilters, QueryRead
from lorebase.retrieval.vector import KnownVector, query_embedding_key
from lorebase.timing import Timer

ANSWER_CACHE_VERSION = "2"  # 2: stored as QueryRead JSON without per-request fields

# A cached answer is the JSON of its QueryRead without the fields that differ per request, so a
# hit is served as those bytes with the three fields put in front: no parse, validation and
# re-serialisation of a payload that was validated when it was stored (bench/RESULTS.md).
_PER_REQUEST = frozenset({"query_id", "cached", "timings_ms"})
_STORED_PREFIX = b'{"results":'


@dataclass(frozen=True)
class Flags:
    """The query's flags, each taken from the request or else the settings."""

    hybrid: bool
    rerank: bool
    agentic: bool
    top_k: int


def resolve_flags(ctx: AppContext, query: QueryCreate) -> Flags:
    """The request's flags, unset ones from the settings."""
    settings = ctx.settings

    def pick(asked: bool | None, default: bool) -> bool:
        return default if asked is None else asked

    return Flags(
        hybrid=pick(query.use_hybrid_search, settings.use_hybrid_search),
        rerank=pick(query.use_re_ranking, settings.use_re_ranking),
        agentic=pick(query.use_agentic_rag, settings.use_agentic_rag),
        top_k=query.top_k or settings.default_top_k,
    )


def normalise_query(text: str) -> str:
    """The cache's notion of "the same question": NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def answer_cache_key(
    ctx: AppContext, *, project: ProjectAccess, query: QueryCreate, flags: Flags
) -> str:
    """Project, corpus generation, normalised query, flags, filters, top_k and every model or
    setting that shapes the answer: any knowledge change moves to a new key."""
    settings = ctx.settings
    parts = {
        "q": normalise_query(query.query_text),
        "flags": [flags.hybrid, flags.rerank, flags.agentic, flags.top_k],
        "filters": (query.filters or QueryFilters()).canonical(),
        "embedder": ctx.embedder.model_id,
        "llm": ctx.llm.model_id if flags.agentic else None,
        "reranker": (
            reranker_id(settings=settings, registry=ctx.registry, llm=ctx.llm)
            if flags.rerank
            else None
        ),
        "retrieval": [
            settings.retrieval_candidates,
            settings.retrieval_candidates_per_result,
            settings.rrf_k,
            settings.hybrid_fusion,
            settings.hybrid_keyword_fulltext_share,
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


@dataclass(frozen=True)
class CacheLookup:
    """A query's cache lookup: the answer's JSON (a hit), and the query's embedding as Redis
    had it (read in the same round trip; None when Redis did not answer)."""

    payload: bytes | None
    vector: KnownVector | None


async def cached_json(
    ctx: AppContext, *, key: str, query_id: UUID, started: float, query_text: str | None = None
) -> CacheLookup:
    """The cached answer under `key` as the JSON bytes of a QueryRead (with this request's
    `query_id`, `cached` and `timings_ms`), or None; with `query_text`, its embedding is
    looked up in the same round trip (a miss needs it next)."""
    timer = Timer(started=started)
    known: KnownVector | None = None
    with timer.span("cache"):
        if query_text is None:
            stored = await ctx.cache.get_bytes(key)
        else:
            embedder = ctx.embedder
            vector_key = query_embedding_key(ctx.cache, model_id=embedder.model_id, text=query_text)
            stored, vector, answered = await ctx.cache.get_bytes_and_vector(
                key, vector_key, dimension=embedder.dimension
            )
            known = KnownVector(vector) if answered else None
    if stored is None or not stored.startswith(_STORED_PREFIX):
        ANSWER_CACHE.labels(result="miss").inc()
        return CacheLookup(None, known)
    ANSWER_CACHE.labels(result="hit").inc()
    timings = timer.stop()
    return CacheLookup(
        with_request_fields(stored, query_id=query_id, cached=True, timings_ms=timings), known
    )


def with_request_fields(
    stored: bytes, *, query_id: UUID, cached: bool, timings_ms: dict[str, float]
) -> bytes:
    """A stored answer's JSON with the per-request fields put in front: a QueryRead's JSON."""
    head = orjson.dumps({"query_id": query_id, "cached": cached, "timings_ms": timings_ms})
    return head[:-1] + b"," + stored[1:]


def parse_cached(payload: bytes) -> QueryRead | None:
    """A cached answer as a QueryRead; None when it no longer validates."""
    try:
        return QueryRead.model_validate_json(payload)
    except ValueError:
        return None


def stored_json(response: QueryRead) -> bytes:
    """`response` as the cache stores it: its JSON without the per-request fields."""
    return response.model_dump_json(exclude=set(_PER_REQUEST)).encode()


async def store_answer(ctx: AppContext, *, key: str, stored: bytes) -> None:
    """Cache an answer's `stored_json`."""
    await ctx.cache.set_bytes(key, stored, ttl=ctx.settings.query_cache_ttl_seconds)
