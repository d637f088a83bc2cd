"""`lorebase serve`, `worker`, `migrate`, `reembed`, `user create`, `mcp` and `bench`: running and
operating the service."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import uuid
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from pydantic import SecretStr, ValidationError

from lorebase.cli.base import (
    app,
    check_configured,
    command_settings,
    fail,
    project_option,
    running_services,
    user_app,
)
from lorebase.settings import Settings, get_settings

if TYPE_CHECKING:
    from lorebase.auth.schemas import UserCreate, UserRead
    from lorebase.embedding.reembed import ReembedResult

# `lorebase.bench.scenarios.SCENARIOS`, named here so that defining `bench`'s options does not
# import the benchmark (tests/unit/test_cli_imports.py checks that the two agree).
BENCH_SCENARIOS = (
    "reads-project",
    "reads-tasks",
    "ingest",
    "search-semantic",
    "search-hybrid",
    "search-cached",
    "hnsw-100k",
    "hnsw-1m",
    "soak",
    "replica",
)


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


_UVICORN: dict[str, Any] = {
    "factory": True,
    "log_config": None,
    "access_log": False,
    "proxy_headers": False,
    "server_header": False,
    # uvloop + httptools, named so a missing extra fails loudly instead of silently serving on
    # the slower pure-Python stack.
    "loop": "uvloop",
    "http": "httptools",
}


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    workers: int = typer.Option(
        None,
        min=1,
        envvar="LOREBASE_WORKERS",
        show_default="the cores, at most 4",
        help="HTTP worker processes (they share one local embedding model).",
    ),
    no_worker: bool = typer.Option(False, "--no-worker", help="Do not run a job worker here."),
) -> None:
    """Migrate, start and serve (with a job worker unless --no-worker)."""
    settings = command_settings()
    check_configured(settings)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with running_services(settings) as (resolved, _services):
        # The application is imported once the services are up (a refusal, such as a data dir
        # in use, costs no import) and before any worker is forked (they share it).
        import uvicorn

        from lorebase.memory import check_redis_budget
        from lorebase.serving import PARENT_ENV, default_workers

        workers = workers or default_workers()
        _export(resolved)
        if not settings.uses_embedded_redis and resolved.redis_url is not None:
            warning = check_redis_budget(resolved.redis_url.get_secret_value())
            if warning is not None:
                typer.secho(f"lorebase: warning: {warning}", err=True, fg=typer.colors.YELLOW)
        if no_worker:
            os.environ["LOREBASE_RUN_WORKER"] = "0"
        # Each worker process sizes its share of the cores (the local embedder's threads).
        os.environ["LOREBASE_WORKERS"] = str(workers)
        os.environ[PARENT_ENV] = str(os.getpid())
        if workers == 1:
            _announce(host, port, workers, None)
            uvicorn.run("lorebase.main:create_app", host=host, port=port, **_UVICORN)
            return
        _serve_workers(resolved, host=host, port=port, workers=workers)


def _announce(host: str, port: int, workers: int, socket_path: Path | None) -> None:
    from lorebase.banner import print_banner_when_up

    shared = f"; local embedding model loaded once, shared over {socket_path}"
    logging.getLogger("lorebase.serve").info(
        "serving http://%s:%d with %d HTTP worker%s%s",
        host,
        port,
        workers,
        "s" if workers > 1 else "",
        shared if socket_path else "",
    )
    print_banner_when_up(host, port, workers=workers)


def _serve_workers(settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Fork the HTTP workers first (no thread or model yet), then load the shared model."""
    import uvicorn

    from lorebase.embedding.shared import shared_local_model
    from lorebase.serving import WorkerPool

    config = uvicorn.Config("lorebase.serving:create_worker_app", host=host, port=port, **_UVICORN)
    pool = WorkerPool(config, workers)
    with shared_local_model(settings, workers=workers) as shared:
        pool.start()
        try:
            if shared is not None:
                shared.start()
            _announce(host, port, workers, shared.path if shared else None)
        except BaseException:
            pool.stop()
            raise
        code = pool.run()
    if code:
        raise SystemExit(code)


async def _reembed(settings: Settings, project_id: uuid.UUID, batch_size: int) -> ReembedResult:
    from lorebase.context import open_context
    from lorebase.embedding.reembed import reembed_project

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
    settings = command_settings()
    project_id = project_option(project)
    check_configured(settings)
    from lorebase.errors import AppError
    from lorebase.providers.base import ProviderError

    with running_services(settings) as (resolved, _services):
        try:
            result = asyncio.run(_reembed(resolved, project_id, batch_size))
        except (AppError, ProviderError) as exc:
            fail(str(exc))
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
    settings = command_settings()
    with running_services(settings):
        typer.echo("database is up to date")


async def _create_user(settings: Settings, data: UserCreate, *, admin: bool) -> UserRead:
    from lorebase.auth.service import register_user
    from lorebase.context import open_context

    async with open_context(settings) as ctx:
        return await register_user(ctx=ctx, data=data, is_admin=admin, by_operator=True)


@user_app.command("create")
def user_create(
    name: str = typer.Argument(..., help="Username (3-64 of A-Z a-z 0-9 _ . -)."),
    admin: bool = typer.Option(False, "--admin", help="Make a global administrator."),
) -> None:
    """Create a user; the password comes from LOREBASE_PASSWORD or is asked for twice."""
    from lorebase.auth.schemas import UserCreate
    from lorebase.errors import AppError

    settings = command_settings()
    password = os.environ.get("LOREBASE_PASSWORD") or typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    try:
        data = UserCreate(username=name, password=SecretStr(password))
    except ValidationError as exc:
        # Field names and rules only: the input (the password) is never echoed.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(problems)
        raise  # unreachable
    with running_services(settings) as (resolved, _services):
        try:
            user = asyncio.run(_create_user(resolved, data, admin=admin))
        except AppError as exc:
            fail(exc.detail)
            raise  # unreachable
    role = "administrator" if user.is_admin else "user"
    typer.echo(f"created {role} {user.username} ({user.id})")


@app.command("mcp")
def mcp_stdio() -> None:
    """Serve MCP over stdio for one agent; the credential comes from LOREBASE_TOKEN."""
    from lorebase.mcp.stdio import run_stdio

    settings = command_settings()
    error = run_stdio(settings, token=os.environ.get("LOREBASE_TOKEN", ""))
    if error is not None:
        fail(error)


@app.command()
def bench(
    quick: bool = typer.Option(False, "--quick", help="Tiny sizes, a few seconds per scenario."),
    workers: int = typer.Option(2, min=1, help="`lorebase serve --workers` for the server."),
    json_path: Path | None = typer.Option(None, "--json", help="Where to write the report."),
    scenarios: list[str] = typer.Option(
        [], "--scenarios", help=f"Run only these (repeatable): {', '.join(BENCH_SCENARIOS)}."
    ),
    load_generator: str = typer.Option("auto", help="auto (wrk, else python), wrk or python."),
    connections: int | None = typer.Option(None, help="Concurrent connections (override)."),
    duration: float | None = typer.Option(None, help="Seconds per load scenario (override)."),
    out_dir: Path = typer.Option(Path("bench/out"), help="Run directories and reports go here."),
    keep_data: bool = typer.Option(False, help="Keep the run's data dir (database) afterwards."),
    profile: bool = typer.Option(False, help="py-spy one worker during each load (needs py-spy)."),
    corpus_kb: int | None = typer.Option(None, min=1, help="Ingest at most this much real text."),
    minutes: float = typer.Option(10.0, min=1.0, help="Length of the soak scenario."),
    side_by_side: bool = typer.Option(
        False, help="Issue 13's run: a free fake OpenAI embedder, the 200-file / 2 MB corpus."
    ),
) -> None:
    """Seed a fresh server, load it (wrk), print req/s, latency, errors and memory per scenario."""
    if load_generator not in ("auto", "wrk", "python"):
        fail("--load-generator must be auto, wrk or python")
    names = tuple(name for item in scenarios for name in item.split(",") if name)
    unknown = [name for name in names if name not in BENCH_SCENARIOS]
    if unknown:
        fail(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(BENCH_SCENARIOS)}")
    from lorebase.bench.context import Options as BenchOptions
    from lorebase.bench.runner import main as run_bench_main

    options = BenchOptions(
        quick=quick,
        workers=workers,
        scenarios=names,
        json_path=json_path,
        out_dir=out_dir,
        generator=load_generator,
        connections=connections,
        duration=duration,
        keep_data=keep_data,
        profile=profile,
        corpus_kb=corpus_kb,
        minutes=minutes,
        side_by_side=side_by_side,
    )
    raise typer.Exit(code=run_bench_main(options))


async def _work(settings: Settings, concurrency: int | None) -> None:
    from lorebase.context import open_context
    from lorebase.jobs import run_worker
    from lorebase.knowledge.runner import job_handler, periodic_tasks, worker_options

    async with open_context(settings) as ctx:
        overrides: dict[str, Any] = {"install_signal_handlers": True}
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        await run_worker(
            ctx.db,
            handler=job_handler(ctx),
            options=worker_options(ctx, **overrides),
            periodic=periodic_tasks(ctx),
        )


@app.command()
def worker(
    concurrency: int | None = typer.Option(
        None, min=1, help="Jobs run at once (default from settings)."
    ),
) -> None:
    """Process ingestion jobs (run any number, on any machine, against one DATABASE_URL)."""
    settings = command_settings()
    check_configured(settings)
    with running_services(settings) as (resolved, _services):
        asyncio.run(_work(resolved, concurrency))


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
