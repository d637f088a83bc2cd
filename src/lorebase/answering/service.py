"""Answering a query: the one pipeline behind `POST /rag/query` (JSON and server-sent events),
the MCP `query` tool and the CLI.

A query reads top-down in `_pipeline`: parse (access, flags, cache key) → the answer cache →
search (`retrieval.search`: text and vector legs, fuse, hydrate, rerank) → answer → respond.
The JSON entry points drain that generator and keep its last step; the stream sends every step
as an event; so the two cannot drift apart. Only the answer step differs: the stream asks the
chat model for deltas, JSON for one completion (a chat model that fails degrades JSON to
results only, unless `AnswerOptions.strict` asks for the error; a stream that has started can
only end with an `error` event). The OpenAI-compatible endpoint (`answering.openai_compat`)
runs its queries through here too."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Literal
from uuid import UUID

from lorebase.answering.cache import (
    Flags,
    answer_cache_key,
    cached_json,
    parse_cached,
    resolve_flags,
    store_answer,
    stored_json,
    with_request_fields,
)
from lorebase.answering.prompts import NO_ANSWER
from lorebase.answering.synthesis import (
    Answer,
    AnswerRequest,
    Passage,
    stream_answer,
    synthesize_answer,
)
from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.errors import AppError, problem_from
from lorebase.projects.schemas import ProjectAccess
from lorebase.projects.service import get_project_for
from lorebase.providers.base import ProviderError
from lorebase.retrieval.schemas import CitationRead, QueryCreate, QueryEvent, QueryRead
from lorebase.retrieval.search import search, target_of
from lorebase.retrieval.vector import KnownVector
from lorebase.timing import Timer, elapsed_ms

log = logging.getLogger(__name__)


# --- the public entry points -------------------------------------------------------------


@dataclass(frozen=True)
class AnswerOptions:
    """Per-request overrides of the answer step (the OpenAI-compatible endpoint): the chat
    model's `temperature` and `max_tokens` (both part of the cache key when set), and `strict`:
    a chat model that fails raises (503) instead of degrading JSON to results only."""

    temperature: float | None = None
    max_tokens: int | None = None
    strict: bool = False


async def run_query(
    *,
    ctx: AppContext,
    principal: Principal,
    query: QueryCreate,
    options: AnswerOptions | None = None,
) -> QueryRead:
    """Answer `POST /rag/query`: results (and an answer) for a project the caller may read."""
    parsed = await _parse(ctx, principal, query, options)
    last = await _last(_pipeline(ctx, parsed, stream=False))
    return last.response if isinstance(last, _Step) else QueryRead.model_validate_json(last.payload)


async def run_query_json(*, ctx: AppContext, principal: Principal, query: QueryCreate) -> bytes:
    """`run_query` as the JSON bytes of its QueryRead; a cached answer is served as stored."""
    parsed = await _parse(ctx, principal, query)
    last = await _last(_pipeline(ctx, parsed, stream=False, raw_hit=True))
    if isinstance(last, _Stored):
        return last.payload
    if last.stored is None:  # not cached (a provider failed): serialised here
        return last.response.model_dump_json().encode()
    response = last.response
    return with_request_fields(
        last.stored, query_id=response.query_id, cached=False, timings_ms=response.timings_ms
    )


async def stream_query(
    *,
    ctx: AppContext,
    principal: Principal,
    query: QueryCreate,
    options: AnswerOptions | None = None,
) -> AsyncIterator[QueryEvent]:
    """Check access (errors raise here, before any event), then return the typed events:
    `results`, `delta`* and `citations` (agentic only), `done`; or `error` as the last event."""
    parsed = await _parse(ctx, principal, query, options)
    return _events(_pipeline(ctx, parsed, stream=True))


# --- the pipeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """A parsed query: the request, its project (access checked), flags and cache key."""

    request: QueryCreate
    project: ProjectAccess
    flags: Flags
    key: str
    started: float
    query_id: UUID
    options: AnswerOptions = AnswerOptions()


@dataclass
class _Run:
    """The response being built, and whether a provider failed (then it is not cached)."""

    response: QueryRead
    degraded: bool = False


@dataclass(frozen=True)
class _Step:
    """One step of the pipeline as the stream shows it; `response` is the answer so far."""

    event: Literal["results", "delta", "citations", "done"]
    response: QueryRead
    text: str = ""  # a delta's text
    stored: bytes | None = None  # `done`: the response as the answer cache stored it


@dataclass(frozen=True)
class _Stored:
    """A cache hit as its stored JSON bytes (only when asked for with `raw_hit`)."""

    payload: bytes


async def _pipeline(
    ctx: AppContext, query: _Query, *, stream: bool, raw_hit: bool = False
) -> AsyncIterator[_Step | _Stored]:
    """One query, top-down: cache → search → answer → respond (then cache the answer)."""
    lookup = await cached_json(
        ctx,
        key=query.key,
        query_id=query.query_id,
        started=query.started,
        query_text=query.request.query_text,
    )
    payload = lookup.payload
    if payload is not None and raw_hit:
        yield _Stored(payload)
        return
    hit = parse_cached(payload) if payload is not None else None
    if hit is not None:
        for step in _replay(hit):
            yield step
        return
    run = await _search(ctx, query, lookup.vector)
    yield _Step("results", run.response)
    if query.flags.agentic:
        async for step in _answer(ctx, query, run, stream=stream):
            yield step
    done = _respond(query, run)
    if not run.degraded:  # serialised once: the JSON response is these bytes too
        stored = stored_json(run.response)
        await store_answer(ctx, key=query.key, stored=stored)
        done = replace(done, stored=stored)
    yield done


async def _parse(
    ctx: AppContext, principal: Principal, query: QueryCreate, options: AnswerOptions | None = None
) -> _Query:
    """The project (404 unless the caller may read it), the flags and the cache key."""
    started = time.perf_counter()
    project = await get_project_for(
        ctx.db, principal=principal, project_id=query.project_id, permission=Permission.READ
    )
    flags = resolve_flags(ctx, query)
    key = answer_cache_key(ctx, project=project, query=query, flags=flags)
    options = options or AnswerOptions()
    if options.temperature is not None or options.max_tokens is not None:
        key += f":t={options.temperature}:m={options.max_tokens}"
    return _Query(query, project, flags, key, started, uuid.uuid4(), options)


def _replay(hit: QueryRead) -> Iterator[_Step]:
    """A cached answer's steps: the whole answer text is one delta."""
    yield _Step("results", hit)
    if hit.synthesized_answer is not None:
        yield _Step("delta", hit, text=hit.synthesized_answer)
        yield _Step("citations", hit)
    yield _Step("done", hit)


async def _search(ctx: AppContext, query: _Query, known_vector: KnownVector | None) -> _Run:
    """The passages (`retrieval.search`) as a response without an answer yet."""
    flags = query.flags
    outcome = await search(
        ctx,
        target=target_of(query.project),
        query_text=query.request.query_text,
        mode="hybrid" if flags.hybrid else "semantic",
        top_k=flags.top_k,
        use_re_ranking=flags.rerank,
        filters=query.request.filters,
        known_vector=known_vector,
    )
    response = QueryRead(
        query_id=query.query_id,
        results=outcome.results,
        total_results=len(outcome.results),
        warnings=list(outcome.warnings),
        timings_ms=dict(outcome.timings_ms),
    )
    return _Run(response, degraded=outcome.degraded)


async def _answer(
    ctx: AppContext, query: _Query, run: _Run, *, stream: bool
) -> AsyncIterator[_Step]:
    """The answer over the results with its checked citations: deltas as the model writes
    them (stream), or one completion (JSON)."""
    request = AnswerRequest(
        llm=ctx.llm,
        question=query.request.query_text,
        passages=[Passage(r.id, r.chunk_text) for r in run.response.results],
        budget_tokens=ctx.settings.answer_context_tokens,
        max_tokens=query.options.max_tokens or ctx.settings.answer_max_tokens,
        temperature=query.options.temperature or 0.0,
    )
    answer: Answer | None = None
    with Timer(run.response.timings_ms).span("answer"):
        if stream:
            async for item in stream_answer(request):
                if isinstance(item, Answer):
                    answer = item
                else:
                    yield _Step("delta", run.response, text=item)
            answer = answer or Answer(text=NO_ANSWER)
        else:
            answer = await _complete_answer(query, run, request)
    if answer is not None:
        run.response.synthesized_answer = answer.text
        run.response.citations = [
            CitationRead(result_id=rid, quote=quote) for rid, quote in answer.citations
        ]
        run.response.warnings.extend(answer.warnings)
        run.degraded = run.degraded or answer.degraded
        yield _Step("citations", run.response)


async def _complete_answer(query: _Query, run: _Run, request: AnswerRequest) -> Answer | None:
    """One completion; None (a warning, a degraded run) when the chat model is unavailable."""
    try:
        return await synthesize_answer(request)
    except ProviderError as exc:
        if query.options.strict:
            raise
        run.degraded = True
        run.response.warnings.append(
            f"no answer synthesized: the chat model is unavailable ({exc})"
        )
        return None


def _respond(query: _Query, run: _Run) -> _Step:
    """The finished response: the total time is taken here."""
    run.response.timings_ms["total"] = elapsed_ms(query.started)
    return _Step("done", run.response)


async def _last(steps: AsyncIterator[_Step | _Stored]) -> _Step | _Stored:
    """Drain the pipeline (its end caches the answer) and keep its last step."""
    last: _Step | _Stored | None = None
    async for step in steps:
        last = step
    if last is None:  # the pipeline always ends with `done` or a stored hit
        raise RuntimeError("the query pipeline yielded nothing")
    return last


# --- server-sent events ------------------------------------------------------------------


async def _events(steps: AsyncIterator[_Step | _Stored]) -> AsyncIterator[QueryEvent]:
    """Each step as its typed event; a failure ends the stream with an `error` event."""
    try:
        async for step in steps:
            if isinstance(step, _Stored):  # not asked for by the stream: replay it all the same
                for each in _replay(QueryRead.model_validate_json(step.payload)):
                    yield _event(each)
            else:
                yield _event(step)
    except Exception as exc:
        if not isinstance(exc, AppError | ProviderError):
            log.exception("streamed query failed")
        yield _error_event(exc)


def _event(step: _Step) -> QueryEvent:
    response = step.response
    if step.event == "results":
        return QueryEvent(
            event="results",
            data={
                "query_id": str(response.query_id),
                "results": [r.model_dump(mode="json") for r in response.results],
                "total_results": response.total_results,
            },
        )
    if step.event == "delta":
        return QueryEvent(event="delta", data={"text": step.text})
    if step.event == "citations":
        citations = [c.model_dump(mode="json") for c in response.citations]
        return QueryEvent(event="citations", data={"citations": citations})
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


def _error_event(exc: Exception) -> QueryEvent:
    """The stream's last event for a failure: the same problem REST and MCP give."""
    return QueryEvent(event="error", data=problem_from(exc).body())
