"""`/openai/v1`: the OpenAI wire protocol over the projects (model = project id), for chat
front-ends and agent frameworks that speak it. Authentication, rate limit and access checks are
those of `POST /rag/query`. Errors here are OpenAI's `{"error": {message, type, param, code}}`
rather than problem+json, because that is what the OpenAI SDKs parse (`api.problems`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from lorebase.answering import openai_compat as service
from lorebase.answering.openai_schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    ModelCard,
    ModelList,
)
from lorebase.api.deps import ContextDep, PrincipalDep, QueryRateLimit

OPENAI_PREFIX = "/openai/v1"

router = APIRouter(prefix=OPENAI_PREFIX, tags=["openai"])

CHAT_DOC = (
    "OpenAI's Chat Completions over a project: `model` is the project id, the last user "
    "message the question (earlier turns condense it when a generative model is configured). "
    "The content cites with `[n]` markers matching `citations` (verified quotes). With "
    "`stream: true` the answer streams as `chat.completion.chunk` events, the citations on the "
    "last chunk, then `data: [DONE]`."
)


async def _sse(payloads: AsyncIterator[str]) -> AsyncIterator[ServerSentEvent]:
    async for payload in payloads:
        yield ServerSentEvent(data=payload)


@router.get("/models", response_model=ModelList, summary="The projects you can read, as models")
async def list_models(ctx: ContextDep, principal: PrincipalDep) -> ModelList:
    return await service.list_models(ctx=ctx, principal=principal)


@router.get("/models/{model}", response_model=ModelCard, summary="One project, as a model")
async def get_model(ctx: ContextDep, principal: PrincipalDep, model: str) -> ModelCard:
    return await service.get_model(ctx=ctx, principal=principal, model=model)


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    summary="A cited answer from a project (OpenAI Chat Completions)",
    description=CHAT_DOC,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(
    ctx: ContextDep, principal: PrincipalDep, _limit: QueryRateLimit, body: ChatCompletionRequest
) -> Response | ChatCompletion:
    if body.stream:
        chunks = await service.stream_chat(ctx=ctx, principal=principal, request=body)
        return EventSourceResponse(_sse(chunks), headers={"X-Accel-Buffering": "no"})
    return await service.complete_chat(ctx=ctx, principal=principal, request=body)
