"""`lorebase mcp`: MCP over stdio for one agent, authenticated by `LOREBASE_TOKEN`.

Everything starts inside the SDK's stdio transport, which points fd 1 at stderr while it
serves: nothing that embedded PostgreSQL, Redis or Alembic print can corrupt the protocol.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from mcp.server.mcpserver import Context, MCPServer
from pydantic import SecretStr

from lorebase.auth.service import authenticate
from lorebase.context import open_context
from lorebase.embedded import DataDirLocked, start_services
from lorebase.errors import AppError, ConfigurationError
from lorebase.knowledge.runner import in_process_worker
from lorebase.mcp.runtime import Caller, CallerResolver
from lorebase.mcp.server import build_server
from lorebase.migrate import upgrade_database
from lorebase.providers.registry import check_providers
from lorebase.settings import Settings

log = logging.getLogger("lorebase.mcp")


class StdioStartupError(Exception):
    """`lorebase mcp` cannot serve; the message says what to do."""


def _locked_message(exc: DataDirLocked) -> str:
    return (
        f"{exc}. A running `lorebase serve` owns the embedded database: connect the agent to "
        "its streamable-HTTP endpoint (http://HOST:PORT/mcp, see README 'MCP') instead, or "
        "give `lorebase mcp` DATABASE_URL, REDIS_URL and LOREBASE_SECRET_KEY of a shared "
        "PostgreSQL and Redis."
    )


@asynccontextmanager
async def _stdio_resolver(settings: Settings, token: str) -> AsyncIterator[CallerResolver]:
    try:
        # Providers first: a missing key or unknown name fails before anything is started.
        check_providers(settings)
        services = await anyio.to_thread.run_sync(start_services, settings)
    except DataDirLocked as exc:
        raise StdioStartupError(_locked_message(exc)) from None
    except ConfigurationError as exc:
        raise StdioStartupError(str(exc)) from None
    try:
        await anyio.to_thread.run_sync(upgrade_database, services.database_url)
        resolved = settings.model_copy(
            update={
                "database_url": SecretStr(services.database_url),
                "redis_url": SecretStr(services.redis_url),
                "lorebase_secret_key": SecretStr(services.secret_key),
            }
        )
        async with open_context(resolved) as ctx:
            try:
                principal = await authenticate(ctx=ctx, credential=token)
            except AppError as exc:
                raise StdioStartupError(f"LOREBASE_TOKEN was refused: {exc.detail}") from None
            log.info("mcp stdio ready", extra={"user": principal.username})

            async def resolve(_: Context) -> Caller:
                # Checked on every call: an expired token or a revoked key stops working.
                return Caller(ctx=ctx, principal=await authenticate(ctx=ctx, credential=token))

            # Like `serve`, run a job worker (unless LOREBASE_RUN_WORKER=0): ingestion then
            # completes even when no server shares this database.
            async with in_process_worker(ctx):
                yield resolve
    finally:
        with anyio.CancelScope(shield=True):  # also on SIGTERM: never orphan embedded servers
            await anyio.to_thread.run_sync(services.stop)


def _startup_error(exc: BaseException) -> StdioStartupError | None:
    if isinstance(exc, StdioStartupError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _startup_error(inner)
            if found is not None:
                return found
    return None


async def _serve_until_signalled(server: MCPServer[CallerResolver]) -> None:
    """Serve until stdin closes (how MCP hosts end a stdio server). SIGTERM/SIGINT cancel the
    server at once, so the lifespan stops embedded PostgreSQL/Redis and releases the data dir;
    the process itself then ends when stdin closes, because the SDK reads stdin in a thread
    that a signal cannot interrupt (hosts follow SIGTERM with SIGKILL anyway)."""
    async with anyio.create_task_group() as group:

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for _ in signals:
                    group.cancel_scope.cancel()
                    return

        group.start_soon(on_signal)
        await server.run_stdio_async()
        group.cancel_scope.cancel()


def run_stdio(settings: Settings, *, token: str) -> str | None:
    """Serve MCP on stdin/stdout until the client disconnects; an error message if it cannot."""
    token = token.strip()
    if not token:
        return (
            "LOREBASE_TOKEN is not set: create an API key (POST /api/v1/api-keys) or log in "
            "(POST /api/v1/auth/token) and put it in the MCP host's env for `lorebase mcp`"
        )
    server = build_server(lambda: _stdio_resolver(settings, token))
    try:
        anyio.run(_serve_until_signalled, server)
    except BaseException as exc:
        startup = _startup_error(exc)
        if startup is None:
            raise
        return str(startup)
    return None
