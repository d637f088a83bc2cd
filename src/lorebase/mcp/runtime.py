"""What every tool call goes through: find the caller, run one service call, turn the outcome
into a `CallToolResult` (structured JSON on success, a problem detail on failure)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, cast

import orjson
from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.errors import Invalid, Unauthorized, is_expected
from lorebase.logs import request_id_var
from lorebase.mcp.problems import tool_problem
from lorebase.text import REASON, forbidden_paths

log = logging.getLogger("lorebase.mcp")

# Keys the HTTP endpoint puts in the ASGI scope of an authenticated request.
CALLER_KEY = "lorebase.mcp.caller"
REQUEST_ID_KEY = "lorebase.mcp.request_id"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling a tool, and the application context to serve them with."""

    ctx: AppContext
    principal: Principal


# Finds the authenticated caller of one tool call; one per transport.
CallerResolver = Callable[[Context], Awaitable[Caller]]


# A transport hands the server a lifespan that yields its resolver: the HTTP endpoint's reads
# the request scope; stdio's opens the application context and authenticates LOREBASE_TOKEN.
ResolverLifespan = Callable[[], AbstractAsyncContextManager[CallerResolver]]


def _request_scope(tool_ctx: Context) -> dict[str, Any] | None:
    request = tool_ctx.request_context.request
    scope = getattr(request, "scope", None)
    return scope if isinstance(scope, dict) else None


def _request_id(tool_ctx: Context) -> str:
    scope = _request_scope(tool_ctx)
    if scope is not None and isinstance(scope.get(REQUEST_ID_KEY), str):
        return str(scope[REQUEST_ID_KEY])
    return uuid.uuid4().hex


async def scope_caller(tool_ctx: Context) -> Caller:
    """The caller the HTTP endpoint authenticated for this request."""
    scope = _request_scope(tool_ctx)
    caller = scope.get(CALLER_KEY) if scope is not None else None
    if not isinstance(caller, Caller):
        raise Unauthorized("authentication required")
    return caller


def _result(payload: dict[str, Any], *, is_error: bool = False) -> CallToolResult:
    text = orjson.dumps(payload).decode()
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=payload,
        is_error=is_error,
    )


def _check_arguments(tool_ctx: Context) -> None:
    """Tool arguments follow the REST rule: no NUL or non-characters (lorebase.text)."""
    params = tool_ctx.request_context.params or {}
    paths = list(forbidden_paths(params.get("arguments")))
    if paths:
        names = ", ".join(sorted(".".join(path) for path in paths))
        raise Invalid(
            f"invalid arguments: {names} {REASON}",
            errors=[{"field": ".".join(path), "msg": REASON} for path in paths],
        )


async def invoke(
    tool_ctx: Context, tool: str, run: Callable[[Caller], Awaitable[BaseModel]]
) -> CallToolResult:
    """Run one tool: a failure becomes a tool error (`isError: true`) carrying the problem
    `lorebase.errors.problem_from` maps it to, the same status REST and SSE give it."""
    token = request_id_var.set(_request_id(tool_ctx))
    instance = f"/mcp/tools/{tool}"
    started = time.perf_counter()
    status = 200
    try:
        resolver = cast(CallerResolver, tool_ctx.request_context.lifespan_context)
        caller = await resolver(tool_ctx)
        _check_arguments(tool_ctx)
        value = await run(caller)
        return _result(value.model_dump(mode="json"))
    except Exception as exc:
        # One mapping for every transport: AppError, ProviderError and pydantic's
        # ValidationError as REST renders them; anything else an opaque 500, logged here.
        problem = tool_problem(exc, instance=instance)
        status = int(problem["status"])
        if not is_expected(exc):
            log.exception("tool failed", extra={"tool": tool})
        return _result(problem, is_error=True)
    finally:
        log.info(
            "tool call",
            extra={
                "tool": tool,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        request_id_var.reset(token)
