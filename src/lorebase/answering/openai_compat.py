"""The OpenAI-compatible endpoint's service: models are the projects the caller can read, and a
chat completion is one query through `answering.service` (the same pipeline, cache and
citation check as `POST /rag/query`), translated to OpenAI's shapes.

The last user message is the question; earlier turns condense it first when a generative model
is configured. The answer step is strict: a chat model that fails is a 503 (or, once a stream
has started, an `error` chunk), never an answer without content."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson

from lorebase.answering.condense import Condensed, condense_question
from lorebase.answering.openai_schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    CitationOut,
    LorebaseInfo,
    ModelCard,
    ModelList,
    UsageOut,
    error_object,
)
from lorebase.answering.prompts import NO_ANSWER, answer_messages
from lorebase.answering.service import AnswerOptions, run_query, stream_query
from lorebase.answering.synthesis import Passage, count_tokens, pack_passages
from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.errors import Invalid, NotFound
from lorebase.paging import PageRequest
from lorebase.projects.schemas import ProjectRead
from lorebase.projects.service import get_project_for, list_projects
from lorebase.retrieval.schemas import CitationRead, QueryCreate, QueryEvent, ResultRead

DONE = "[DONE]"
_PAGE = 500


# --- models ------------------------------------------------------------------------------


def _card(project: ProjectRead) -> ModelCard:
    return ModelCard(
        id=str(project.id),
        created=int(project.created_at.timestamp()),
        name=project.name,
        description=project.description,
    )


async def _readable(ctx: AppContext, principal: Principal) -> list[ProjectRead]:
    """Every project the caller can read, oldest first as the projects list orders them."""
    projects: list[ProjectRead] = []
    while True:
        page = await list_projects(
            ctx=ctx, principal=principal, page=PageRequest(skip=len(projects), limit=_PAGE)
        )
        projects.extend(page.items)
        if not page.items or len(projects) >= page.total:
            return projects


async def list_models(*, ctx: AppContext, principal: Principal) -> ModelList:
    """`GET /models`: the projects the caller can read, as models."""
    return ModelList(data=[_card(p) for p in await _readable(ctx, principal)])


def _model_not_found(model: str) -> NotFound:
    return NotFound(
        f"The model `{model}` does not exist or you do not have access to it.",
        extra={"param": "model", "code": "model_not_found"},
    )


async def resolve_model(*, ctx: AppContext, principal: Principal, model: str) -> ProjectRead:
    """The project `model` names: its id, or else its name when exactly one readable project
    bears it. 404 (`model_not_found`) otherwise, alike for absent and unreadable projects."""
    try:
        project_id = UUID(model)
    except ValueError:
        named = [p for p in await _readable(ctx, principal) if p.name == model]
        if len(named) > 1:
            raise Invalid(
                f"{len(named)} projects are named `{model}`: use the project id as the model",
                extra={"param": "model", "code": "model_ambiguous"},
            ) from None
        if not named:
            raise _model_not_found(model) from None
        return named[0]
    try:
        access = await get_project_for(
            ctx.db, principal=principal, project_id=project_id, permission=Permission.READ
        )
    except NotFound:
        raise _model_not_found(model) from None
    return ProjectRead(**access.model_dump(include=set(ProjectRead.model_fields)))


async def get_model(*, ctx: AppContext, principal: Principal, model: str) -> ModelCard:
    """`GET /models/{model}`."""
    return _card(await resolve_model(ctx=ctx, principal=principal, model=model))


# --- chat completions --------------------------------------------------------------------


@dataclass(frozen=True)
class _Chat:
    """A request made ready: the query to run, the answer options and the condensation."""

    request: ChatCompletionRequest
    query: QueryCreate
    options: AnswerOptions
    condensed: Condensed
    created: int = field(default_factory=lambda: int(time.time()))


async def _prepare(ctx: AppContext, principal: Principal, request: ChatCompletionRequest) -> _Chat:
    project = await resolve_model(ctx=ctx, principal=principal, model=request.model)
    turns = [(m.role, m.text()) for m in request.history()]
    condensed = await condense_question(llm=ctx.llm, turns=turns, question=request.question())
    query = QueryCreate(project_id=project.id, query_text=condensed.question, use_agentic_rag=True)
    options = AnswerOptions(
        temperature=request.temperature, max_tokens=request.answer_max_tokens(), strict=True
    )
    return _Chat(request, query, options, condensed)


def _citations(
    citations: Sequence[CitationRead], results: Sequence[ResultRead]
) -> list[CitationOut]:
    """Each citation with its document, version and `[n]` marker (the result's position)."""
    by_id = {r.id: (number, r) for number, r in enumerate(results, start=1)}
    out: list[CitationOut] = []
    for citation in citations:
        if citation.result_id not in by_id:  # cannot happen: citations point into the results
            continue
        number, result = by_id[citation.result_id]
        out.append(
            CitationOut(
                number=number,
                result_id=result.id,
                document_id=result.document_id,
                document_name=result.document_name,
                version=result.version,
                quote=citation.quote,
            )
        )
    return out


def _usage(
    ctx: AppContext, chat: _Chat, results: Sequence[ResultRead], answer: str, *, cached: bool
) -> UsageOut:
    """Estimated tokens of the model calls made: condensing, and the answer prompt as
    `synthesis` packs it (no call for a cache hit or when nothing was retrieved)."""
    prompt = chat.condensed.prompt_tokens
    completion = chat.condensed.completion_tokens
    if results and not cached:
        passages = [Passage(r.id, r.chunk_text) for r in results]
        used = pack_passages(
            passages, budget_tokens=ctx.settings.answer_context_tokens, counter=ctx.llm
        )
        messages = answer_messages(chat.query.query_text, [p.text for p in used])
        prompt += sum(count_tokens(m.content, ctx.llm) for m in messages)
        completion += count_tokens(answer, ctx.llm)
    return UsageOut(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _completion_id(query_id: UUID | None) -> str:
    return f"chatcmpl-{(query_id or uuid.uuid4()).hex}"


async def complete_chat(
    *, ctx: AppContext, principal: Principal, request: ChatCompletionRequest
) -> ChatCompletion:
    """`POST /chat/completions` without `stream`: one `chat.completion`."""
    chat = await _prepare(ctx, principal, request)
    response = await run_query(ctx=ctx, principal=principal, query=chat.query, options=chat.options)
    text = response.synthesized_answer or NO_ANSWER
    return ChatCompletion(
        id=_completion_id(response.query_id),
        created=chat.created,
        model=request.model,
        choices=[Choice(message=AssistantMessage(content=text))],
        usage=_usage(ctx, chat, response.results, text, cached=response.cached),
        citations=_citations(response.citations, response.results),
        lorebase=LorebaseInfo(
            query_id=response.query_id,
            question=chat.query.query_text,
            cached=response.cached,
            warnings=response.warnings,
        ),
    )


async def stream_chat(
    *, ctx: AppContext, principal: Principal, request: ChatCompletionRequest
) -> AsyncIterator[str]:
    """`POST /chat/completions` with `stream`: errors before the answer starts raise here;
    then the `data:` payloads of the server-sent events, `[DONE]` last."""
    chat = await _prepare(ctx, principal, request)
    events = await stream_query(
        ctx=ctx, principal=principal, query=chat.query, options=chat.options
    )
    return _chunks(ctx, chat, events)


# --- the stream ----------------------------------------------------------------------------


@dataclass
class _Stream:
    """What the stream has seen so far: its id, the passages, the answer and its citations."""

    chat: _Chat
    id: str = field(default_factory=lambda: _completion_id(None))
    results: list[ResultRead] = field(default_factory=list)
    parts: list[str] = field(default_factory=list)
    citations: list[CitationRead] = field(default_factory=list)

    def chunk(self, choices: list[dict[str, Any]], **extra: Any) -> str:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.chat.created,
            "model": self.chat.request.model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }
        return orjson.dumps(body).decode()

    def delta(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self.chunk([choice], **extra)


async def _chunks(
    ctx: AppContext, chat: _Chat, events: AsyncIterator[QueryEvent]
) -> AsyncIterator[str]:
    """The pipeline's events as OpenAI chunks: the role first, content deltas, then a last
    chunk with `finish_reason: "stop"` and the citations (and the usage chunk when asked)."""
    state = _Stream(chat)
    async for event in events:
        data = event.data
        if event.event == "results":
            state.id = _completion_id(UUID(data["query_id"]))
            state.results = [ResultRead.model_validate(r) for r in data["results"]]
            yield state.delta({"role": "assistant", "content": ""})
        elif event.event == "delta":
            state.parts.append(data["text"])
            yield state.delta({"content": data["text"]})
        elif event.event == "citations":
            state.citations = [CitationRead.model_validate(c) for c in data["citations"]]
        elif event.event == "done":
            for payload in _last_chunks(ctx, state, data):
                yield payload
        else:  # error: the problem in OpenAI's shape, which the SDKs raise as an APIError
            _, body = error_object(
                int(data.get("status", 500)),
                str(data.get("type", "internal-error")).rsplit("/", 1)[-1],
                str(data.get("detail", "the answer failed")),
                errors=data.get("errors"),
            )
            yield orjson.dumps(body).decode()
    yield DONE


def _last_chunks(ctx: AppContext, state: _Stream, done: dict[str, Any]) -> list[str]:
    chat = state.chat
    info = LorebaseInfo(
        query_id=UUID(done["query_id"]),
        question=chat.query.query_text,
        cached=bool(done.get("cached")),
        warnings=list(done.get("warnings") or []),
    )
    citations = _citations(state.citations, state.results)
    last = state.delta(
        {},
        "stop",
        citations=[c.model_dump(mode="json") for c in citations],
        lorebase=info.model_dump(mode="json"),
    )
    request = chat.request
    if request.stream_options is None or not request.stream_options.include_usage:
        return [last]
    text = "".join(state.parts)
    usage = _usage(ctx, chat, state.results, text, cached=info.cached)
    return [last, state.chunk([], usage=usage.model_dump())]
