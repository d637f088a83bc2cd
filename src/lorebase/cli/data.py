"""`lorebase query`, `lorebase ingest` and `lorebase eval`: the commands that put knowledge in
or ask it questions from a shell."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import ValidationError

from lorebase.auth.principal import Principal
from lorebase.cli.base import (
    app,
    check_configured,
    command_settings,
    fail,
    project_option,
    running_services,
)
from lorebase.settings import Settings

if TYPE_CHECKING:
    from lorebase.context import AppContext
    from lorebase.evaluation.report import EvalReport
    from lorebase.knowledge.local import FileOutcome
    from lorebase.retrieval.schemas import QueryCreate, QueryRead

OPERATOR = Principal(user_id=uuid.UUID(int=0), username="operator", is_admin=True)
# `lorebase.evaluation.runner.MODES`, named here so that defining `eval`'s options does not
# import the evaluation (tests/unit/test_cli_imports.py checks that the two agree).
EVAL_MODES = ("semantic", "fulltext", "hybrid", "hybrid+rerank")


async def _query(settings: Settings, query: QueryCreate) -> QueryRead:
    from lorebase.answering.service import run_query
    from lorebase.context import open_context

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
    from lorebase.errors import AppError
    from lorebase.providers.base import ProviderError
    from lorebase.retrieval.schemas import QueryCreate

    settings = command_settings()
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
        fail(f"invalid query: {exc}")
        raise  # unreachable
    check_configured(settings)
    with running_services(settings) as (resolved, _services):
        try:
            response = asyncio.run(_query(resolved, request))
        except (AppError, ProviderError) as exc:
            fail(str(exc))
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


async def _project_owner(ctx: AppContext, project_id: uuid.UUID) -> Principal:
    """The operator acting as the project's owner (documents record who added them)."""
    from lorebase.auth.permissions import Permission
    from lorebase.errors import AppError
    from lorebase.projects.service import get_project_for

    try:
        access = await get_project_for(
            ctx.db, principal=OPERATOR, project_id=project_id, permission=Permission.WRITE
        )
    except AppError as exc:
        fail(exc.detail)
        raise  # unreachable
    return Principal(user_id=access.owner_id, username="operator", is_admin=True)


async def _ingest(
    settings: Settings, project_id: uuid.UUID, paths: list[Path], tags: list[str], wait: bool
) -> list[FileOutcome]:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    from lorebase.context import open_context
    from lorebase.jobs import background_worker
    from lorebase.knowledge.local import submit_files, wait_for_jobs
    from lorebase.knowledge.runner import job_handler, worker_options
    from lorebase.knowledge.sources.files import collect_files

    files = collect_files(paths)
    if not files:
        fail("no files found (everything is missing or ignored by .gitignore)")
    async with open_context(settings) as ctx:
        owner = await _project_owner(ctx, project_id)
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
    settings = command_settings()
    project_id = project_option(project)
    check_configured(settings)
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
    from lorebase.context import open_context
    from lorebase.evaluation.runner import evaluate

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
    settings = command_settings()
    for dataset_dir in dataset_dirs:
        for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
            if not (dataset_dir / name).is_file():
                fail(f"{dataset_dir} has no {name} (BEIR layout expected)")
    chosen = [m for item in modes for m in item.split(",") if m] or list(EVAL_MODES)
    unknown = [m for m in chosen if m not in EVAL_MODES]
    if unknown:
        fail(f"unknown mode(s) {', '.join(unknown)}; known: {', '.join(EVAL_MODES)}")
    check_configured(settings)
    from lorebase.errors import AppError
    from lorebase.providers.base import ProviderError

    with running_services(settings) as (resolved, _services):
        try:
            reports = asyncio.run(_evaluate(resolved, dataset_dirs, chosen, answers))
        except (AppError, ProviderError) as exc:
            fail(str(exc))
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
