"""The `lorebase` command."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from types import FrameType

import typer
import uvicorn
from pydantic import SecretStr, ValidationError

from lorebase.auth.schemas import UserCreate, UserRead
from lorebase.auth.service import register_user
from lorebase.context import open_context
from lorebase.embedded import EmbeddedServices, start_services
from lorebase.embedding.reembed import ReembedResult, reembed_project
from lorebase.errors import AppError, ConfigurationError
from lorebase.logs import configure_logging
from lorebase.mcp.stdio import run_stdio
from lorebase.migrate import upgrade_database
from lorebase.providers.base import ProviderError
from lorebase.providers.registry import check_providers
from lorebase.settings import Settings, get_settings

app = typer.Typer(help="Lorebase: a knowledge engine for AI agents.", no_args_is_help=True)
user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
app.add_typer(user_app, name="user")


def _fail(message: str) -> None:
    typer.secho(f"lorebase: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=1)


@contextlib.contextmanager
def running_services(settings: Settings) -> Iterator[tuple[Settings, EmbeddedServices]]:
    """Start embedded services if needed, migrate, and yield settings that point at them."""
    try:
        services = start_services(settings)
    except ConfigurationError as exc:
        _fail(str(exc))
        raise  # unreachable; keeps type checkers happy
    try:
        upgrade_database(services.database_url)
        resolved = settings.model_copy(
            update={
                "database_url": SecretStr(services.database_url),
                "redis_url": SecretStr(services.redis_url),
                "lorebase_secret_key": SecretStr(services.secret_key),
            }
        )
        yield resolved, services
    finally:
        services.stop()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # uvicorn re-raises the signal it caught after a graceful shutdown; turning it into
    # SystemExit lets `running_services` stop the embedded servers instead of dying outright.
    raise SystemExit(128 + signum)


def _export(settings: Settings) -> None:
    """Hand the resolved URLs to child processes (uvicorn workers)."""
    for name in ("database_url", "redis_url", "lorebase_secret_key"):
        value = getattr(settings, name)
        if value is not None:
            os.environ[name.upper()] = value.get_secret_value()
    get_settings.cache_clear()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="HTTP worker processes."),
    no_worker: bool = typer.Option(False, "--no-worker", help="Do not run a job worker here."),
) -> None:
    """Migrate, start and serve (with a job worker unless --no-worker)."""
    settings = get_settings()
    configure_logging(settings.log_level)
    _check_providers(settings)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with running_services(settings) as (resolved, _services):
        _export(resolved)
        if no_worker:
            os.environ["LOREBASE_RUN_WORKER"] = "0"
        uvicorn.run(
            "lorebase.main:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
        )


def _check_providers(settings: Settings) -> None:
    # A missing key or unknown provider fails here, as one line, not in uvicorn's lifespan.
    try:
        check_providers(settings)
    except ConfigurationError as exc:
        _fail(str(exc))


async def _reembed(settings: Settings, project_id: uuid.UUID, batch_size: int) -> ReembedResult:
    async with open_context(settings) as ctx:
        typer.echo(
            f"re-embedding project {project_id} with {ctx.embedder.provider}/"
            f"{ctx.embedder.model_id} ({ctx.embedder.dimension}-d)"
        )
        return await reembed_project(
            db=ctx.db,
            project_id=project_id,
            embedder=ctx.embedder,
            batch_size=batch_size,
            progress=lambda done, total: typer.echo(f"  {done}/{total} items"),
        )


@app.command()
def reembed(
    project: str = typer.Option(..., "--project", help="Project id."),
    batch_size: int = typer.Option(256, min=1, help="Items per embedding round."),
) -> None:
    """Move a project's knowledge to the configured EMBEDDING_PROVIDER/EMBEDDING_MODEL.

    Resumable; the old space keeps serving queries until every item is re-embedded."""
    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        project_id = uuid.UUID(project)
    except ValueError:
        _fail(f"--project must be a project id (a UUID), got {project!r}")
        raise  # unreachable
    _check_providers(settings)
    with running_services(settings) as (resolved, _services):
        try:
            result = asyncio.run(_reembed(resolved, project_id, batch_size))
        except (AppError, ProviderError) as exc:
            _fail(str(exc))
            raise  # unreachable
    if not result.switched and not result.embedded:
        typer.echo(f"project {project_id} is already in {result.to_model}; nothing to do")
    else:
        typer.echo(
            f"project {project_id} moved from {result.from_model} to {result.to_model}: "
            f"{result.embedded} items embedded, {result.deleted} old items removed"
        )


@app.command()
def migrate() -> None:
    """Apply database migrations and exit."""
    settings = get_settings()
    configure_logging(settings.log_level)
    with running_services(settings):
        typer.echo("database is up to date")


async def _create_user(settings: Settings, data: UserCreate, *, admin: bool) -> UserRead:
    async with open_context(settings) as ctx:
        return await register_user(ctx=ctx, data=data, is_admin=admin, by_operator=True)


@user_app.command("create")
def user_create(
    name: str = typer.Argument(..., help="Username (3-64 of A-Z a-z 0-9 _ . -)."),
    admin: bool = typer.Option(False, "--admin", help="Make a global administrator."),
) -> None:
    """Create a user; the password comes from LOREBASE_PASSWORD or is asked for twice."""
    settings = get_settings()
    configure_logging(settings.log_level)
    password = os.environ.get("LOREBASE_PASSWORD") or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        data = UserCreate(username=name, password=SecretStr(password))
    except ValidationError as exc:
        # Field names and rules only: the input (the password) is never echoed.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(problems)
        raise  # unreachable
    with running_services(settings) as (resolved, _services):
        try:
            user = asyncio.run(_create_user(resolved, data, admin=admin))
        except AppError as exc:
            _fail(exc.detail)
            raise  # unreachable
    role = "administrator" if user.is_admin else "user"
    typer.echo(f"created {role} {user.username} ({user.id})")


@app.command("mcp")
def mcp_stdio() -> None:
    """Serve MCP over stdio for one agent; the credential comes from LOREBASE_TOKEN."""
    settings = get_settings()
    configure_logging(settings.log_level)
    error = run_stdio(settings, token=os.environ.get("LOREBASE_TOKEN", ""))
    if error is not None:
        _fail(error)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
