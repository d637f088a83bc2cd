"""The `lorebase` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import typer
import uvicorn
from pydantic import SecretStr, ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from lorebase.answering.service import run_query
from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.auth.schemas import UserCreate, UserRead
from lorebase.auth.service import register_user
from lorebase.banner import print_banner_when_up
from lorebase.bench.runner import Options as BenchOptions
from lorebase.bench.runner import main as run_bench_main
from lorebase.bench.scenarios import SCENARIOS as BENCH_SCENARIOS
from lorebase.context import open_context
from lorebase.embedded import EmbeddedServices, start_services
from lorebase.embedding.reembed import ReembedResult, reembed_project
from lorebase.embedding.shared import shared_local_model
from lorebase.errors import AppError, ConfigurationError
from lorebase.evaluation.report import EvalReport
from lorebase.evaluation.runner import MODES as EVAL_MODES
from lorebase.evaluation.runner import evaluate
from lorebase.jobs import background_worker, run_worker
from lorebase.knowledge.local import FileOutcome, submit_files, wait_for_jobs
from lorebase.knowledge.runner import job_handler, worker_options
from lorebase.knowledge.sources.files import collect_files
from lorebase.logs import configure_logging
from lorebase.mcp.stdio import run_stdio
from lorebase.memory import check_redis_budget
from lorebase.migrate import upgrade_database
from lorebase.projects.service import get_project_for
from lorebase.providers.base import ProviderError
from lorebase.providers.registry import check_providers
from lorebase.retrieval.schemas import QueryCreate, QueryRead
from lorebase.serving import PARENT_ENV
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
    workers: int = typer.Option(
        1, min=1, help="HTTP worker processes (2+ share one local embedding model)."
    ),
    no_worker: bool = typer.Option(False, "--no-worker", help="Do not run a job worker here."),
) -> None:
    """Migrate, start and serve (with a job worker unless --no-worker)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    _check_providers(settings)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with running_services(settings) as (resolved, _services):
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
        with shared_local_model(resolved, workers=workers) as socket_path:
            shared = f"; local embedding model loaded once, shared over {socket_path}"
            logging.getLogger("lorebase.serve").info(
                "serving http://%s:%d with %d HTTP worker%s%s",
                host,
                port,
                workers,
                "s" if workers > 1 else "",
                shared if socket_path else "",
            )
            print_banner_when_up(host, port)
            _run_uvicorn(host=host, port=port, workers=workers)


def _run_uvicorn(*, host: str, port: int, workers: int) -> None:
    uvicorn.run(
        "lorebase.serving:create_worker_app" if workers > 1 else "lorebase.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        # uvloop + httptools, named so a missing extra fails loudly instead of silently
        # serving on the slower pure-Python stack.
        loop="uvloop",
        http="httptools",
        # With --workers, uvicorn kills a worker that does not answer its ping within this
        # many seconds. Its default (5 s) is shorter than a worker's start (spawn, imports,
        # model warm-up) on a busy 2-core machine, which then restarts workers forever.
        timeout_worker_healthcheck=60,
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
    configure_logging(settings.log_level, settings.log_format)
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
    configure_logging(settings.log_level, settings.log_format)
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
    configure_logging(settings.log_level, settings.log_format)
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
    configure_logging(settings.log_level, settings.log_format)
    error = run_stdio(settings, token=os.environ.get("LOREBASE_TOKEN", ""))
    if error is not None:
        _fail(error)


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
        _fail("--load-generator must be auto, wrk or python")
    names = tuple(name for item in scenarios for name in item.split(",") if name)
    unknown = [name for name in names if name not in BENCH_SCENARIOS]
    if unknown:
        _fail(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(BENCH_SCENARIOS)}")
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


OPERATOR = Principal(user_id=uuid.UUID(int=0), username="operator", is_admin=True)


async def _query(settings: Settings, query: QueryCreate) -> QueryRead:
    async with open_context(settings) as ctx:
        return await run_query(ctx=ctx, principal=OPERATOR, query=query)


@app.command()
def query(
    text: str = typer.Argument(..., help="The question."),
    project: str = typer.Option(..., "--project", help="Project id."),
    top_k: int | None = typer.Option(None, "--top-k", min=1, max=100, help="Results."),
    hybrid: bool | None = typer.Option(None, "--hybrid/--semantic", help="Hybrid search."),
    rerank: bool | None = typer.Option(None, "--rerank/--no-rerank", help="Re-rank."),
    answer: bool | None = typer.Option(None, "--answer/--no-answer", help="Agentic answer."),
    as_json: bool = typer.Option(False, "--json", help="Print the response as JSON."),
) -> None:
    """Query a project's knowledge as the operator (flags default from the settings)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        request = QueryCreate(
            project_id=uuid.UUID(project),
            query_text=text,
            top_k=top_k,
            use_hybrid_search=hybrid,
            use_re_ranking=rerank,
            use_agentic_rag=answer,
        )
    except (ValueError, ValidationError) as exc:
        _fail(f"invalid query: {exc}")
        raise  # unreachable
    _check_providers(settings)
    with running_services(settings) as (resolved, _services):
        try:
            response = asyncio.run(_query(resolved, request))
        except (AppError, ProviderError) as exc:
            _fail(str(exc))
            raise  # unreachable
    if as_json:
        typer.echo(response.model_dump_json(indent=2))
        return
    if response.synthesized_answer is not None:
        typer.echo(response.synthesized_answer + "\n")
    for rank, result in enumerate(response.results, start=1):
        score = result.rerank_score if result.rerank_score is not None else result.similarity_score
        snippet = " ".join(result.chunk_text.split())[:160]
        typer.echo(f"{rank:>2}. [{score:.3f}] {result.document_name} {result.version}: {snippet}")
    for warning in response.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"({response.total_results} results, {response.timings_ms.get('total', 0):.0f} ms)")


async def _work(settings: Settings, concurrency: int | None) -> None:
    async with open_context(settings) as ctx:
        overrides: dict[str, Any] = {"install_signal_handlers": True}
        if concurrency is not None:
            overrides["concurrency"] = concurrency
        await run_worker(ctx.db, handler=job_handler(ctx), options=worker_options(ctx, **overrides))


@app.command()
def worker(
    concurrency: int | None = typer.Option(
        None, min=1, help="Jobs run at once (default from settings)."
    ),
) -> None:
    """Process ingestion jobs (run any number, on any machine, against one DATABASE_URL)."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    _check_providers(settings)
    with running_services(settings) as (resolved, _services):
        asyncio.run(_work(resolved, concurrency))


async def _ingest(
    settings: Settings, project_id: uuid.UUID, paths: list[Path], tags: list[str], wait: bool
) -> list[FileOutcome]:
    files = collect_files(paths)
    if not files:
        _fail("no files found (everything is missing or ignored by .gitignore)")
    async with open_context(settings) as ctx:
        try:
            access = await get_project_for(
                ctx.db, principal=OPERATOR, project_id=project_id, permission=Permission.WRITE
            )
        except AppError as exc:
            _fail(exc.detail)
            raise  # unreachable
        # The operator acts as the project's owner (documents record who added them).
        owner = Principal(user_id=access.owner_id, username="operator", is_admin=True)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with RichProgress(*columns, transient=False) as bar:
            submitting = bar.add_task("submitting", total=len(files))
            outcomes = await submit_files(
                ctx,
                principal=owner,
                project_id=project_id,
                files=files,
                tags=tags,
                on_submitted=lambda _outcome: bar.advance(submitting),
            )
            job_ids = [o.job_id for o in outcomes if o.job_id is not None]
            if not wait or not job_ids:
                return outcomes
            indexing = bar.add_task("indexing", total=len(job_ids))
            async with background_worker(
                ctx.db, handler=job_handler(ctx), options=worker_options(ctx)
            ):
                jobs = await wait_for_jobs(
                    ctx,
                    job_ids,
                    on_update=lambda done, _total: bar.update(indexing, completed=done),
                )
        for outcome in outcomes:
            job = jobs.get(outcome.job_id) if outcome.job_id else None
            if job is not None:
                outcome.status, outcome.detail = job.status, job.error
    return outcomes


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files and folders (folders recursively)."),
    project: str = typer.Option(..., "--project", help="Project id."),
    tag: list[str] = typer.Option([], "--tag", help="Tag every document (repeatable)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Index here and wait for it."),
) -> None:
    """Add files and folders to a project through the upload pipeline (honours .gitignore).

    With the embedded database, stop `lorebase serve` first (it owns the data dir); with
    DATABASE_URL, `--no-wait` leaves the indexing to the running workers."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        project_id = uuid.UUID(project)
    except ValueError:
        _fail(f"--project must be a project id (a UUID), got {project!r}")
        raise  # unreachable
    _check_providers(settings)
    with running_services(settings) as (resolved, _services):
        outcomes = asyncio.run(_ingest(resolved, project_id, paths, tag, wait))
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if outcome.status in ("skipped", "failed"):
            typer.secho(
                f"{outcome.status}: {outcome.name}: {outcome.detail}",
                err=True,
                fg=typer.colors.YELLOW,
            )
    typer.echo(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    if counts.get("failed"):
        raise typer.Exit(code=1)


async def _evaluate(
    settings: Settings, dataset_dirs: list[Path], modes: list[str], answers: bool
) -> list[EvalReport]:
    async with open_context(settings) as ctx:
        return [
            await evaluate(
                ctx,
                dataset_dir=dataset_dir,
                modes=modes,
                answers=answers,
                on_progress=lambda message: typer.echo(message, err=True),
            )
            for dataset_dir in dataset_dirs
        ]


@app.command("eval")
def eval_command(
    dataset_dirs: list[Path] = typer.Argument(
        ..., help="BEIR datasets: corpus.jsonl, queries.jsonl, qrels/test.tsv (one or more)."
    ),
    modes: list[str] = typer.Option(
        [], "--mode", help=f"Run only these (repeatable): {', '.join(EVAL_MODES)}."
    ),
    answers: bool = typer.Option(
        False, "--answers", help="Also ask every question with use_agentic_rag and judge it."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the JSON report here."),
) -> None:
    """Ingest each BEIR dataset into a temporary project; print nDCG@10, recall@10/100, MRR@10
    (overall and for keyword-like vs natural queries) and p50/p95 latency per retrieval mode,
    as a table and as JSON; with --answers, the answer metrics too."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    for dataset_dir in dataset_dirs:
        for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
            if not (dataset_dir / name).is_file():
                _fail(f"{dataset_dir} has no {name} (BEIR layout expected)")
    chosen = [m for item in modes for m in item.split(",") if m] or list(EVAL_MODES)
    unknown = [m for m in chosen if m not in EVAL_MODES]
    if unknown:
        _fail(f"unknown mode(s) {', '.join(unknown)}; known: {', '.join(EVAL_MODES)}")
    _check_providers(settings)
    with running_services(settings) as (resolved, _services):
        try:
            reports = asyncio.run(_evaluate(resolved, dataset_dirs, chosen, answers))
        except (AppError, ProviderError) as exc:
            _fail(str(exc))
            raise  # unreachable
    for report in reports:
        typer.echo(
            f"{report.dataset}: {report.documents} documents, {report.chunks} chunks, "
            f"{report.queries} queries ({report.embedding_model}; ingested in "
            f"{report.ingest_seconds:.1f} s)\n"
        )
        typer.echo(report.table())
        typer.echo("")
    single = len(reports) == 1
    data = reports[0].as_json() if single else {"datasets": [r.as_json() for r in reports]}
    payload = json.dumps(data, indent=2)
    typer.echo(payload)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(payload + "\n")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
