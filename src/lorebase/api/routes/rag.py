"""`POST /rag/query`: JSON, or typed server-sent events with `Accept: text/event-stream`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from lorebase.answering import service
from lorebase.api.deps import ContextDep, PrincipalDep, QueryRateLimit
from lorebase.retrieval.schemas import QueryCreate, QueryEvent, QueryRead

JSON = "application/json"

router = APIRouter(prefix="/rag", tags=["rag"])

STREAM_DOC = (
    "With `Accept: text/event-stream` the answer streams as typed events: `results` (the "
    "passages), `delta` (answer text, agentic only), `citations` (agentic only), then `done` "
    "(query id, warnings, timings) — or `error` as the last event."
)


def _wants_stream(accept: str | None) -> bool:
    return accept is not None and "text/event-stream" in accept.lower()


async def _sse(events: AsyncIterator[QueryEvent]) -> AsyncIterator[ServerSentEvent]:
    async for item in events:
        yield ServerSentEvent(data=orjson.dumps(item.data).decode(), event=item.event)


@router.post(
    "/query",
    response_model=QueryRead,
    summary="Query a project's knowledge",
    description=STREAM_DOC,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def query_knowledge(
    ctx: ContextDep,
    principal: PrincipalDep,
    _limit: QueryRateLimit,
    body: QueryCreate,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    if _wants_stream(accept):
        events = await service.stream_query(ctx=ctx, principal=principal, query=body)
        return EventSourceResponse(_sse(events), headers={"X-Accel-Buffering": "no"})
    # The service answers with the QueryRead's JSON: a cached answer goes out as stored.
    payload = await service.run_query_json(ctx=ctx, principal=principal, query=body)
    return Response(content=payload, media_type=JSON)
