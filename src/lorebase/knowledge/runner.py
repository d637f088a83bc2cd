"""Run one ingestion job (the queue's handler): status, progress, cancellation, failures.

Transient provider failures put the job back in the queue with exponential backoff (honouring
`Retry-After`); permanent ones (an unreadable file, a refused key, a blocked URL) fail the job
with a message a user can act on. A worker shutting down hands its job back to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from lorebase.context import AppContext
from lorebase.db import Database
from lorebase.documents import indexing as documents
from lorebase.errors import AppError
from lorebase.jobs import JobHandler, Periodic, RetryLater, WorkerOptions, background_worker
from lorebase.knowledge import repository, source_jobs
from lorebase.knowledge.extract import ExtractionError
from lorebase.knowledge.pipeline import JobCancelled, fail_version, index_version
from lorebase.knowledge.sources import crawl_model, git
from lorebase.knowledge.sources.netguard import BlockedAddress
from lorebase.knowledge.sync import sync_repository, sync_site
from lorebase.providers.base import ProviderError, ProviderUnavailable

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000
_SHUTDOWN_NOTE = "interrupted by a worker shutdown; resuming"


class JobTracker:
    """Per-stage counters written to the job row (throttled); also the job's heartbeat.

    A background beat keeps `heartbeat_at` fresh during long stages and cancels the job's
    task as soon as cancellation is requested."""

    def __init__(self, db: Database, job_id: UUID, *, interval: float = 0.5) -> None:
        self.db = db
        self.job_id = job_id
        self.interval = interval
        self.stages: dict[str, dict[str, int]] = {}
        self.stage: str | None = None
        self.overall: tuple[int, int] | None = None
        self.cancel_requested = False
        self._written = 0.0

    async def advance(self, stage: str, *, done: int = 0, total: int = 0) -> None:
        counters = self.stages.setdefault(stage, {"done": 0, "total": 0})
        counters["done"] += done
        counters["total"] += total
        self.stage = stage
        # Throttled like every other write: the finished job records its final counters.
        await self.flush()

    async def set_overall(self, done: int, total: int, *, stage: str | None = None) -> None:
        self.overall = (done, total)
        if stage is not None:
            self.stages[stage] = {"done": done, "total": total}
        await self.flush()

    def progress(self) -> tuple[str, int, int]:
        """(stage, done, total) as the job row shows them."""
        if self.overall is not None:
            done, total = self.overall
        elif self.stage is not None:
            done, total = self.stages[self.stage]["done"], self.stages[self.stage]["total"]
        else:
            done, total = 0, 0
        return self.stage or "queued", done, total

    async def flush(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < self.interval:
            return
        self._written = now
        stage, done, total = self.progress()
        async with self.db.connection() as conn:
            cancelled = await repository.record_progress(
                conn, job_id=self.job_id, stage=stage, done=done, total=total, stages=self.stages
            )
        if cancelled:
            self.cancel_requested = True
            raise JobCancelled()

    async def beat(self, task: asyncio.Task[Any], every: float) -> None:
        while not task.done():
            await asyncio.sleep(every)
            try:
                await self.flush(force=True)
            except JobCancelled:
                task.cancel()
                return
            except Exception:  # a missed beat is not worth failing the job
                log.warning("job heartbeat failed", extra={"job_id": str(self.job_id)})


def backoff_seconds(ctx: AppContext, attempt: int, retry_after: float | None) -> float:
    delay = min(600.0, ctx.settings.job_retry_base_seconds * 2.0 ** (attempt - 1))
    return float(max(delay, retry_after or 0.0))


async def _start(ctx: AppContext, job_id: UUID) -> dict[str, Any] | None:
    """Mark the job running (and its source, if any), or None when it is already finished,
    cancelled or deleted."""
    async with ctx.db.transaction() as conn:
        row = await repository.start_job(conn, job_id=job_id)
        if row is not None:
            await source_jobs.job_started(conn, row)
    return row


async def run_job(ctx: AppContext, job_id: UUID, attempt: int) -> None:
    """The queue handler: run the job `job_id` (attempt counts from 1)."""
    row = await _start(ctx, job_id)
    if row is None:
        return  # finished, cancelled or deleted meanwhile
    max_attempts = ctx.settings.job_max_attempts
    if row["attempts"] > max_attempts:
        await _fail(
            ctx, row, f"gave up after {max_attempts} attempts (the job kept being interrupted)"
        )
        return
    tracker = JobTracker(ctx.db, job_id)
    body = asyncio.create_task(_dispatch(ctx, row, tracker))
    beat = asyncio.create_task(
        tracker.beat(body, every=max(1.0, ctx.settings.job_lease_seconds / 6))
    )
    try:
        try:
            result = await asyncio.shield(body)
        except asyncio.CancelledError:
            if tracker.cancel_requested and body.cancelled():
                raise JobCancelled() from None
            raise
    except JobCancelled:
        await _finish(ctx, row, "cancelled", "cancelled on request")
        return
    except ProviderUnavailable as exc:
        await _retry_later(ctx, row, exc)  # raises RetryLater while attempts remain
        return
    except (
        ExtractionError,
        crawl_model.CrawlError,
        git.GitError,
        BlockedAddress,
        ProviderError,
    ) as exc:
        await _fail(ctx, row, str(exc) or type(exc).__name__)
        return
    except AppError as exc:  # e.g. the project's embedding space differs (409)
        await _fail(ctx, row, exc.detail)
        return
    except asyncio.CancelledError:
        # This worker is shutting down: the queue hands the job to the next worker.
        body.cancel()
        with contextlib.suppress(Exception):
            await asyncio.shield(
                _requeue(ctx, job_id, "interrupted by a worker shutdown; resuming")
            )
        raise
    except Exception as exc:
        log.exception("job failed unexpectedly", extra={"job_id": str(job_id)})
        await _fail(
            ctx, row, f"internal error ({type(exc).__name__}); the server log has the details"
        )
        return
    finally:
        beat.cancel()
    await _finish(ctx, row, "succeeded", None, result=result, tracker=tracker)


async def _retry_later(ctx: AppContext, row: dict[str, Any], exc: ProviderUnavailable) -> None:
    """Back in the queue with exponential backoff while attempts remain, else failed."""
    max_attempts = ctx.settings.job_max_attempts
    message = f"the embedding provider is unavailable: {exc}"
    if row["attempts"] < max_attempts:
        delay = backoff_seconds(ctx, row["attempts"], exc.retry_after)
        note = f"{message}; retrying in {delay:.0f}s (attempt {row['attempts']}/{max_attempts})"
        await _requeue(ctx, row["id"], note[:MAX_ERROR_CHARS])
        raise RetryLater(note, delay=delay) from exc
    await _fail(ctx, row, f"{message} (gave up after {max_attempts} attempts)")


async def _requeue(ctx: AppContext, job_id: UUID, note: str) -> None:
    async with ctx.db.connection() as conn:
        await repository.requeue_job(conn, job_id=job_id, error=note)


async def _finish(
    ctx: AppContext,
    row: dict[str, Any],
    status: str,
    error: str | None,
    *,
    result: dict[str, Any] | None = None,
    tracker: JobTracker | None = None,
) -> None:
    if status == "cancelled":
        await _document_failed(ctx, row, "indexing was cancelled")
    error = error[:MAX_ERROR_CHARS] if error else None
    async with ctx.db.transaction() as conn:
        finished = await repository.finish_job(
            conn,
            job_id=row["id"],
            status=status,
            error=error,
            result=result,
            stages=tracker.stages if tracker else None,
            progress=tracker.progress() if tracker else None,
        )
        if finished is not None:
            await source_jobs.job_ended(conn, finished, status, error)


async def _fail(ctx: AppContext, row: dict[str, Any], message: str) -> None:
    log.info("job failed", extra={"job_id": str(row["id"]), "error": message[:200]})
    await _document_failed(ctx, row, message)
    await _finish(ctx, row, "failed", message)


async def _document_failed(ctx: AppContext, row: dict[str, Any], message: str) -> None:
    payload = row["payload"] or {}
    if "version_id" in payload:
        await fail_version(
            ctx,
            document_id=UUID(payload["document_id"]),
            version_id=UUID(payload["version_id"]),
            message=message[:MAX_ERROR_CHARS],
        )


async def _dispatch(ctx: AppContext, row: dict[str, Any], tracker: JobTracker) -> dict[str, Any]:
    kind = row["kind"]
    payload = row["payload"] or {}
    if kind in ("upload", "text"):
        return await _index(ctx, payload, tracker)
    if kind == "crawl":
        return await sync_site(ctx, row, tracker)
    if kind == "git":
        return await sync_repository(ctx, row, tracker)
    if kind == source_jobs.DELETE_KIND:
        return await source_jobs.delete_source(ctx, row)
    raise ExtractionError(f"unknown job kind {kind!r}")


async def _index(ctx: AppContext, payload: dict[str, Any], tracker: JobTracker) -> dict[str, Any]:
    document_id = UUID(payload["document_id"])
    try:
        return await index_version(
            ctx,
            document_id=document_id,
            version_id=UUID(payload["version_id"]),
            progress=tracker,
        )
    except ExtractionError as exc:
        async with ctx.db.connection() as conn:
            name = await documents.document_name(conn, document_id=document_id)
        name = name or "the document"
        raise ExtractionError(f"{name}: {exc}") from None


def job_handler(ctx: AppContext) -> JobHandler:
    """The queue handler bound to an open context."""

    async def handle(job_id: UUID, attempt: int) -> None:
        await run_job(ctx, job_id, attempt)

    return handle


def periodic_tasks(ctx: AppContext) -> tuple[Periodic, ...]:
    """What a long-running worker (`serve`'s, `lorebase worker`) also does on a schedule."""

    async def sync_due_sources() -> None:
        await source_jobs.queue_due_syncs(ctx)

    return (Periodic("sources", ctx.settings.source_schedule_seconds, sync_due_sources),)


def worker_options(ctx: AppContext, **overrides: Any) -> WorkerOptions:
    values: dict[str, Any] = {
        "concurrency": ctx.settings.job_concurrency,
        "lease_seconds": ctx.settings.job_lease_seconds,
    }
    values.update(overrides)
    return WorkerOptions(**values)


@contextlib.asynccontextmanager
async def in_process_worker(ctx: AppContext) -> AsyncIterator[None]:
    """The job worker of `lorebase serve` (unless LOREBASE_RUN_WORKER=0 / `--no-worker`)."""
    if not ctx.settings.lorebase_run_worker:
        yield
        return
    async with background_worker(
        ctx.db, handler=job_handler(ctx), options=worker_options(ctx), periodic=periodic_tasks(ctx)
    ):
        yield
