"""The streamable-HTTP endpoint at `/mcp`: authenticate every request (bearer JWT or API key,
`Authorization: Bearer` or `X-API-Key`, exactly as REST), then hand it to the SDK.

Stateless mode with JSON responses: each POST is served on its own, so any number of
`lorebase serve` workers or replicas can answer without sticky sessions, and a credential
is checked on every request (an expired token or revoked key stops working at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import orjson
from mcp.server.transport_security import TransportSecuritySettings
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from lorebase.auth.credentials import header_credential
from lorebase.auth.service import authenticate
from lorebase.context import AppContext
from lorebase.errors import AppError, Unauthorized, problem_from
from lorebase.logs import request_id_var
from lorebase.mcp.runtime import CALLER_KEY, REQUEST_ID_KEY, Caller, CallerResolver, scope_caller
from lorebase.mcp.server import build_server

MCP_PATH = "/mcp"


def _credential(scope: Scope) -> str:
    headers: dict[str, str] = {
        bytes(name).decode("latin-1"): bytes(value).decode("latin-1")
        for name, value in scope["headers"]
    }
    credential = header_credential(headers)
    if credential is None:
        raise Unauthorized("authentication required: send 'Authorization: Bearer <token or key>'")
    return credential


async def _send_problem(scope: Scope, send: Send, exc: AppError) -> None:
    problem = problem_from(exc)
    body = orjson.dumps(problem.body(instance=scope.get("path", MCP_PATH)))
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _NoStream(AppError):
    status, type, title = 405, "method-not-allowed", "Method Not Allowed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Allow": "POST"})


@asynccontextmanager
async def _scope_resolver() -> AsyncIterator[CallerResolver]:
    yield scope_caller


class McpHttpEndpoint:
    """An ASGI app for the `/mcp` route; `running()` must wrap the app's lifespan."""

    def __init__(self) -> None:
        self.server = build_server(_scope_resolver)
        # The SDK's app is not mounted: only its session manager is used, behind our auth.
        # DNS-rebinding protection (Host/Origin allow-list) is off because every request
        # must carry a bearer credential, which a rebinding page cannot supply.
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.session_manager = self.server.session_manager

    def route(self) -> Route:
        """The `/mcp` route (every method: POST for messages, GET/DELETE answered by the SDK)."""
        return Route(MCP_PATH, endpoint=self, include_in_schema=False)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the SDK's session manager for the duration; enter once, in the app's lifespan.

        The manager's anyio task group lives in a task of its own, so the lifespan may be
        entered and left from different tasks (test harnesses do that) without tripping
        anyio's cancel-scope checks."""
        ready = asyncio.Event()
        stop = asyncio.Event()

        async def hold() -> None:
            async with self.session_manager.run():
                ready.set()
                await stop.wait()

        holder = asyncio.create_task(hold(), name="mcp-session-manager")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({holder, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if holder.done():
            waiter.cancel()
            holder.result()  # raises what stopped the manager from starting
            raise RuntimeError("MCP session manager stopped while starting")
        try:
            yield
        finally:
            stop.set()
            await holder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - routes only see http
            return
        ctx: AppContext = scope["app"].state.ctx
        try:
            principal = await authenticate(ctx=ctx, credential=_credential(scope))
        except AppError as exc:
            await _send_problem(scope, send, exc)
            return
        if scope["method"] == "GET":
            # No server-initiated stream in stateless mode: say so (as the MCP spec allows)
            # instead of holding an idle SSE connection open forever.
            await _send_problem(scope, send, _NoStream("this endpoint has no GET stream"))
            return
        scope = {
            **scope,
            CALLER_KEY: Caller(ctx=ctx, principal=principal),
            REQUEST_ID_KEY: request_id_var.get(),
        }
        await self.session_manager.handle_request(scope, receive, send)
