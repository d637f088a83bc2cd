"""Scheduled re-syncs (issue 17): a source with `sync_interval_seconds` syncs on its own through
the job queue — procrastinate's periodic task on long-running workers — never twice at once,
also with two workers ticking together, and again after the workers restart."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from psycopg_pool import PoolTimeout

from lorebase.context import AppContext
from lorebase.db import Database
from lorebase.jobs import PERIODIC_QUEUE, Periodic, background_worker, build_worker_app
from lorebase.knowledge.runner import job_handler, periodic_tasks, worker_options
from lorebase.knowledge.source_jobs import queue_due_syncs
from tests.factories import TestUser, create_project, register_user
from tests.ingestion import drain
from tests.loopback_site import LoopbackSite
from tests.sourcing import api_client, loopback_ctx

API = "/api/v1"
INTERVAL = 1


@pytest.fixture(scope="module")
def fast_ctx(ctx: AppContext) -> AppContext:
    """Sources may sync every second and workers look for due ones every second."""
    return loopback_ctx(ctx, source_min_sync_interval_seconds=INTERVAL, source_schedule_seconds=1)


@pytest.fixture(scope="module")
async def http(fast_ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(fast_ctx) as client:
        yield client


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    site = LoopbackSite()
    site.page("/", "<h1>Schedule</h1><p>A page that is crawled again and again.</p>")
    yield site
    site.stop()


async def scheduled_source(
    http: httpx.AsyncClient, ctx: AppContext, site: LoopbackSite, interval: int | None
) -> tuple[TestUser, str]:
    """A crawl source synced once, then given `interval`."""
    user = await register_user(http)
    project = await create_project(http, user.headers)
    crawl = await http.post(
        f"{API}/knowledge/crawl",
        json={"project_id": project["id"], "url": site.base + "/"},
        headers=user.headers,
    )
    assert crawl.status_code == 202, crawl.text
    await drain(ctx)
    (source,) = (
        await http.get(f"{API}/projects/{project['id']}/sources", headers=user.headers)
    ).json()["items"]
    response = await http.put(
        f"{API}/sources/{source['id']}",
        json={"sync_interval_seconds": interval},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    return user, str(source["id"])


async def sync_jobs(ctx: AppContext, source_id: str) -> list[dict[str, Any]]:
    async with ctx.db.connection() as conn:
        cursor = await conn.execute(
            "SELECT id, status, created_at, started_at, finished_at FROM jobs "
            "WHERE payload->>'source_id' = %s AND kind = 'crawl' ORDER BY created_at",
            (source_id,),
        )
        return await cursor.fetchall()


async def wait_for(ctx: AppContext, source_id: str, succeeded: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = await sync_jobs(ctx, source_id)
        if sum(job["status"] == "succeeded" for job in jobs) >= succeeded:
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"fewer than {succeeded} syncs succeeded in {timeout}s: {jobs}")


async def stop_schedule(http: httpx.AsyncClient, user: TestUser, source_id: str) -> None:
    response = await http.put(
        f"{API}/sources/{source_id}", json={"sync_interval_seconds": None}, headers=user.headers
    )
    assert response.status_code == 200


def test_long_running_workers_register_the_periodic_task(fast_ctx: AppContext) -> None:
    handler = job_handler(fast_ctx)
    app = build_worker_app(handler, periodic_tasks(fast_ctx))
    (task,) = app.periodic_registry.periodic_tasks.values()
    assert (task.task.name, task.cron, task.task.queue) == (
        "lorebase.periodic.sources",
        "* * * * * */1",
        PERIODIC_QUEUE,
    )
    hourly = dataclasses.replace(
        fast_ctx, settings=fast_ctx.settings.model_copy(update={"source_schedule_seconds": 60})
    )
    assert periodic_tasks(hourly)[0].cron == "*/1 * * * *"
    assert Periodic("x", 150, periodic_tasks(hourly)[0].run).cron == "*/2 * * * *"
    assert Periodic("x", 3600, periodic_tasks(hourly)[0].run).cron == "0 * * * *"
    # One-shot workers (tests, `lorebase ingest --wait`) run no schedule.
    assert build_worker_app(handler).periodic_registry.periodic_tasks == {}


async def test_due_sources_are_queued_once_however_many_ticks_race(
    http: httpx.AsyncClient, fast_ctx: AppContext, site: LoopbackSite
) -> None:
    user, source_id = await scheduled_source(http, fast_ctx, site, INTERVAL)
    await asyncio.sleep(INTERVAL + 0.2)  # now due
    assert len(await sync_jobs(fast_ctx, source_id)) == 1
    await asyncio.gather(*(queue_due_syncs(fast_ctx) for _ in range(4)))
    jobs = await sync_jobs(fast_ctx, source_id)
    assert len(jobs) == 2, jobs
    assert jobs[-1]["status"] == "queued"
    source = (await http.get(f"{API}/sources/{source_id}", headers=user.headers)).json()
    assert (source["status"], source["last_job_id"]) == ("queued", str(jobs[-1]["id"]))
    # Still queued: another tick, however late, queues nothing more.
    await asyncio.sleep(INTERVAL + 0.2)
    await queue_due_syncs(fast_ctx)
    assert len(await sync_jobs(fast_ctx, source_id)) == 2
    await stop_schedule(http, user, source_id)
    await drain(fast_ctx)


async def test_a_scheduled_source_syncs_on_its_own_once_at_a_time_across_restarts(
    http: httpx.AsyncClient, fast_ctx: AppContext, site: LoopbackSite
) -> None:
    user, source_id = await scheduled_source(http, fast_ctx, site, INTERVAL)
    handler = job_handler(fast_ctx)
    periodic = periodic_tasks(fast_ctx)
    async with AsyncExitStack() as workers:  # two workers ticking every second
        for name in ("scheduler-a", "scheduler-b"):
            await workers.enter_async_context(
                background_worker(
                    fast_ctx.db,
                    handler=handler,
                    options=worker_options(fast_ctx, name=name),
                    periodic=periodic,
                )
            )
        await wait_for(fast_ctx, source_id, succeeded=3, timeout=90)
    restarted_from = len(await sync_jobs(fast_ctx, source_id))
    async with background_worker(
        fast_ctx.db, handler=handler, options=worker_options(fast_ctx), periodic=periodic
    ):
        await wait_for(fast_ctx, source_id, succeeded=restarted_from + 1, timeout=60)
    await stop_schedule(http, user, source_id)
    await drain(fast_ctx)

    jobs = await sync_jobs(fast_ctx, source_id)
    assert all(job["status"] in ("succeeded", "queued") for job in jobs), jobs
    finished = [job for job in jobs if job["status"] == "succeeded"]
    for before, after in itertools.pairwise(finished):
        # Never two at once: each sync was queued after the previous one had finished.
        assert after["created_at"] >= before["finished_at"], (before, after)
    source = (await http.get(f"{API}/sources/{source_id}", headers=user.headers)).json()
    assert source["status"] in ("idle", "queued")
    assert source["documents"] == 1  # re-synced, never duplicated


async def test_a_tick_while_the_database_is_down_is_logged_and_the_next_one_runs(
    fast_ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = Database(f"postgresql://nobody@127.0.0.1:{port}/none?connect_timeout=1", min_size=0)
    dead.pool.timeout = 1.0
    await dead.pool.open(wait=False)
    try:
        down = dataclasses.replace(fast_ctx, db=dead)
        with pytest.raises(PoolTimeout):
            await queue_due_syncs(down)
        app = build_worker_app(job_handler(down), periodic_tasks(down))
        tick = app.tasks["lorebase.periodic.sources"]
        with caplog.at_level(logging.ERROR, logger="lorebase.jobs"):
            await tick.func(timestamp=int(time.time()))  # does not raise: the worker lives on
        assert "periodic task failed" in caplog.text
    finally:
        await dead.close()
    assert await queue_due_syncs(fast_ctx) >= 0  # the real database: ticks work again
