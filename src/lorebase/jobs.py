"""The durable job queue: procrastinate on the application's PostgreSQL.

- `defer_job(conn, job_id=...)` inserts the queue entry on the caller's connection, inside the
  caller's transaction, so a job commits (or rolls back) together with the rows it is about.
- `run_worker(db, handler=...)` processes jobs. Any number of workers (inside `lorebase serve`
  or as `lorebase worker` processes on other machines) share the queue; each fetches with
  `FOR UPDATE SKIP LOCKED`.
- A worker that dies (kill -9, lost machine) stops beating its heartbeat; after
  `lease_seconds` every live worker's reaper puts that worker's running jobs back in the queue.
- A handler raises `RetryLater(delay)` for a transient failure; the job runs again after the
  delay. Everything else it decides (and records) itself.
- Jobs deferred with the same `lock` (e.g. every job about one source) run one at a time, in
  the order they were queued, whichever workers fetch them.
- `Periodic` functions (e.g. queueing the due source syncs) run on a cron through procrastinate's
  periodic tasks: however many workers run, each tick is deferred once (the database refuses a
  second defer for the same tick), on a queue only workers that registered it listen to.

The schema is applied by Alembic (migration 0002), never at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from procrastinate import App, JobContext, PsycopgConnector, RetryDecision
from procrastinate.exceptions import JobAborted
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy

from lorebase.db import Conn, Database

log = logging.getLogger(__name__)

TASK_NAME = "lorebase.run_job"
QUEUE = "lorebase"
PERIODIC_QUEUE = "lorebase-periodic"

JobHandler = Callable[[UUID, int], Awaitable[None]]
"""`handler(job_id, attempt)`: runs one job; `attempt` counts from 1."""


class RetryLater(Exception):
    """Raised by a handler: run this job again after `delay` seconds."""

    def __init__(self, message: str, *, delay: float) -> None:
        super().__init__(message)
        self.delay = max(0.0, delay)


class _RetryStrategy(BaseRetryStrategy):
    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryLater):
            return RetryDecision(retry_in={"seconds": round(exception.delay)})
        if isinstance(exception, asyncio.CancelledError | JobAborted):
            # The worker is shutting down mid-job: hand the job to the next worker now.
            return RetryDecision(retry_in={"seconds": 0})
        return None


@dataclass(frozen=True, slots=True)
class Periodic:
    """`run()` every `seconds` on whichever worker fetches the tick (at most one per tick)."""

    name: str
    seconds: int
    run: Callable[[], Awaitable[None]]

    @property
    def cron(self) -> str:
        # Under a minute: a seconds field (croniter's sixth); else every n whole minutes, at
        # most hourly.
        if self.seconds < 60:
            return f"* * * * * */{self.seconds}"
        minutes = self.seconds // 60
        return "0 * * * *" if minutes >= 60 else f"*/{minutes} * * * *"


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    concurrency: int = 2
    lease_seconds: float = 60.0  # a worker silent this long is presumed dead
    poll_seconds: float = 5.0  # fallback polling when LISTEN/NOTIFY is missed
    wait: bool = True  # False: return once the queue is empty (tests, one-shot CLI runs)
    name: str = "lorebase-worker"
    install_signal_handlers: bool = False
    shutdown_seconds: float = 10.0  # running jobs get this long to finish on shutdown


def _app() -> App:
    return App(connector=PsycopgConnector())


@functools.cache
def _deferring_app() -> App:
    # Created on first use, never opened: `connection=` runs the insert on the caller's one.
    return _app()


async def defer_job(conn: Conn, *, job_id: UUID, lock: str | None = None) -> int:
    """Queue `job_id` on `conn`; it is visible to workers only when the caller commits. Jobs
    sharing a `lock` never run at the same time."""
    deferrer = _deferring_app().configure_task(TASK_NAME, queue=QUEUE, connection=conn, lock=lock)
    queue_id: int = await deferrer.defer_async(job_id=str(job_id))
    return queue_id


async def requeue_stalled(app: App, *, lease_seconds: float) -> int:
    """Put back in the queue the running jobs of workers silent for `lease_seconds`."""
    stalled = await app.job_manager.get_stalled_jobs(
        queue=QUEUE, seconds_since_heartbeat=lease_seconds
    )
    count = 0
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except Exception as exc:  # another worker's reaper was faster, or the job finished
            log.debug("stalled job not requeued", extra={"queue_job": job.id, "error": str(exc)})
            continue
        count += 1
        log.warning(
            "requeued a job whose worker stopped responding",
            extra={"queue_job": job.id, "job_id": job.task_kwargs.get("job_id")},
        )
    return count


async def _reaper(app: App, *, lease_seconds: float) -> None:
    while True:
        try:
            await requeue_stalled(app, lease_seconds=lease_seconds)
        except Exception:
            log.exception("stalled-job check failed")
        await asyncio.sleep(max(1.0, lease_seconds / 2))


def _register_periodic(app: App, periodic: Periodic) -> None:
    name = f"lorebase.periodic.{periodic.name}"

    # The queueing lock keeps one tick waiting at most when every worker is busy.
    @app.periodic(cron=periodic.cron, periodic_id=periodic.name, queueing_lock=name)
    @app.task(name=name, queue=PERIODIC_QUEUE)
    async def tick(timestamp: int) -> None:
        try:
            await periodic.run()
        except Exception:  # the next tick tries again; a failed tick is not worth a retry
            log.exception("periodic task failed", extra={"periodic": periodic.name})


def build_worker_app(handler: JobHandler, periodic: Sequence[Periodic] = ()) -> App:
    """A procrastinate app whose task runs `handler(job_id, attempt)`, plus `periodic`."""
    app = _app()

    @app.task(name=TASK_NAME, queue=QUEUE, pass_context=True, retry=_RetryStrategy())
    async def run_job(context: JobContext, job_id: str) -> None:
        assert context.job is not None
        await handler(UUID(job_id), context.job.attempts + 1)

    for item in periodic:
        _register_periodic(app, item)
    return app


async def run_worker(
    db: Database,
    *,
    handler: JobHandler,
    options: WorkerOptions | None = None,
    periodic: Sequence[Periodic] = (),
) -> None:
    """Process jobs until cancelled (or, with `wait=False`, until the queue is empty), and
    run the `periodic` functions on their schedule."""
    options = options or WorkerOptions()
    app = build_worker_app(handler, periodic)
    async with app.open_async(pool=db.pool):
        reaper = asyncio.create_task(_reaper(app, lease_seconds=options.lease_seconds))
        try:
            if not options.wait:
                # One-shot runs (tests, CLI) first adopt what dead workers left behind.
                await requeue_stalled(app, lease_seconds=options.lease_seconds)
            await app.run_worker_async(
                queues=[QUEUE, PERIODIC_QUEUE] if periodic else [QUEUE],
                name=options.name,
                concurrency=options.concurrency,
                wait=options.wait,
                fetch_job_polling_interval=options.poll_seconds,
                update_heartbeat_interval=max(0.5, options.lease_seconds / 4),
                stalled_worker_timeout=options.lease_seconds,
                install_signal_handlers=options.install_signal_handlers,
                shutdown_graceful_timeout=options.shutdown_seconds,
                listen_notify=options.wait,
                delete_jobs="successful",
            )
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper


@contextlib.asynccontextmanager
async def background_worker(
    db: Database,
    *,
    handler: JobHandler,
    options: WorkerOptions | None = None,
    periodic: Sequence[Periodic] = (),
) -> AsyncIterator[asyncio.Task[None]]:
    """Run a worker as a task for the duration of the block (the one inside `serve`)."""
    task = asyncio.create_task(run_worker(db, handler=handler, options=options, periodic=periodic))

    def report(done: asyncio.Task[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.error("the job worker stopped", exc_info=done.exception())

    task.add_done_callback(report)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
