"""`lorebase-client` against a real `lorebase serve`: the README's first steps, sync and async,
typed errors with the request id, streaming, token refresh and Retry-After retries."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from lorebase_client import AsyncClient, Client, Conflict, NotFound, RateLimited, RetryPolicy

from tests.e2e.conftest import LorebaseServer
from tests.loopback_site import LoopbackSite

HANDBOOK = (
    "# Handbook\n\n## Holidays\n\nEvery employee gets 30 days of paid holiday a year, "
    "booked through the team calendar.\n\n## Equipment\n\nLaptops are replaced every three years.\n"
)
MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> object:
    root = tmp_path_factory.mktemp("client")
    (root / "data").mkdir()
    # Short-lived access tokens so the refresh path runs; a query limit low enough to hit;
    # crawls of the loopback site below, re-synced as often as every second.
    env = {
        "ACCESS_TOKEN_TTL_SECONDS": "3",
        "RATE_LIMIT_QUERY": "8/minute",
        "CRAWL_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
        "SOURCE_MIN_SYNC_INTERVAL_SECONDS": "1",
        "SOURCE_SCHEDULE_SECONDS": "1",
    }
    serve = LorebaseServer(root / "data", env=env)
    serve.start(timeout=300)
    yield serve
    serve.stop()


def test_first_steps_sync(server: LorebaseServer, tmp_path: Path) -> None:
    (tmp_path / "handbook.md").write_text(HANDBOOK)
    name = f"ada-{uuid.uuid4().hex[:6]}"
    with Client(server.url) as lb:
        lb.register(name, "a long password")
        lb.login(name, "a long password")
        project = lb.create_project("handbook", tags=["hr"])
        accepted = lb.upload(project.id, tmp_path / "handbook.md")
        job = lb.wait_job(accepted[0].job_id or "", timeout=300)
        answer = lb.query(project.id, "how many days of holiday?", use_agentic_rag=True)
        with pytest.raises(NotFound) as missing:
            lb.get_project(MISSING)
        assert job.status == "succeeded"
        assert "30 days" in answer.results[0].chunk_text
        assert answer.citations
        assert answer.citations[0].quote in answer.results[0].chunk_text
        assert missing.value.status == 404
        assert missing.value.request_id
        assert [p.id for p in lb.iter_projects()] == [project.id]
        # The access token lives 3 s: the client renews it with the refresh token by itself.
        time.sleep(4)
        assert lb.me().username == name
        events = list(lb.stream(project.id, "how many days of holiday?", use_agentic_rag=True))
        assert events[0].event == "results"
        assert events[-1].event == "done"
        assert "".join(e.text for e in events if e.event == "delta")


def test_first_steps_async(server: LorebaseServer) -> None:
    async def flow() -> None:
        name = f"bob-{uuid.uuid4().hex[:6]}"
        async with AsyncClient(server.url) as lb:
            await lb.register(name, "a long password")
            await lb.login(name, "a long password")
            project = await lb.create_project("notes")
            accepted = await lb.upload(project.id, ("handbook.md", HANDBOOK.encode()))
            job = await lb.wait_job(accepted[0].job_id or "", timeout=300)
            answer = await lb.query(project.id, "when are laptops replaced?")
            events = [e async for e in lb.stream(project.id, "laptops", use_agentic_rag=True)]
            key = await lb.create_api_key("agent", ["read"], project_id=project.id)
            with pytest.raises(NotFound) as missing:
                await lb.get_document(MISSING)
        assert job.status == "succeeded"
        assert "three years" in answer.results[0].chunk_text
        assert events[-1].event == "done"
        assert missing.value.request_id
        async with AsyncClient(server.url, api_key=key.key) as agent:
            assert (await agent.get_project(project.id)).name == "notes"

    asyncio.run(flow())


def test_a_failed_job_is_retried_once(server: LorebaseServer) -> None:
    name = f"joe-{uuid.uuid4().hex[:6]}"
    with Client(server.url) as lb:
        lb.register(name, "a long password")
        lb.login(name, "a long password")
        project = lb.create_project("retries")
        broken = lb.upload(project.id, ("broken.pdf", b"%PDF-1.4 not really a pdf"))[0]
        failed = lb.wait_job(broken.job_id or "", timeout=300)
        retried = lb.retry_job(failed.id)
        same = lb.retry_job(failed.id)
        again = lb.wait_job(retried.id, timeout=300)
        old = lb.get_job(failed.id)
        good = lb.upload(project.id, ("h.md", HANDBOOK.encode()))[0]
        succeeded = lb.wait_job(good.job_id or "", timeout=300)
        with pytest.raises(Conflict) as refused:
            lb.retry_job(succeeded.id)
    assert failed.status == "failed"
    assert "broken.pdf" in (failed.error or "")
    assert retried.retry_of == failed.id
    assert same.id == retried.id
    assert old.retried_as == retried.id
    assert again.status == "failed", "the same file fails the same way"
    assert refused.value.status == 409


def test_rate_limit_retries_honour_retry_after_then_raise(server: LorebaseServer) -> None:
    name = f"eve-{uuid.uuid4().hex[:6]}"
    with Client(server.url, retry=RetryPolicy(attempts=0)) as lb:
        lb.register(name, "a long password")
        lb.login(name, "a long password")
        project = lb.create_project("limits")
        with pytest.raises(RateLimited) as limited:
            _ask_repeatedly(lb, project.id)
    assert limited.value.retry_after is not None
    assert limited.value.retry_after > 0
    # With retries, the client waits what Retry-After says and then gets through.
    with Client(server.url, retry=RetryPolicy(attempts=2, max_wait=15)) as lb:
        lb.login(name, "a long password")
        assert lb.query(project.id, "one more").total_results == 0


def _ask_repeatedly(lb: Client, project_id: object) -> None:
    for i in range(20):
        lb.query(str(project_id), f"question {i}")


@pytest.fixture
def site() -> object:
    site = LoopbackSite()
    site.page("/", "<h1>Changelog</h1><p>Version 2 ships on Friday.</p>", title="Changelog")
    yield site
    site.stop()


def _syncs(lb: Client, project_id: object) -> list[str]:
    jobs = lb.list_jobs(str(project_id), kind="crawl", status="succeeded").items
    return [str(job.id) for job in jobs]


def test_sources_sync_on_their_own_and_on_request_then_go(
    server: LorebaseServer, site: LoopbackSite
) -> None:
    name = f"sam-{uuid.uuid4().hex[:6]}"
    with Client(server.url) as lb:
        lb.register(name, "a long password")
        lb.login(name, "a long password")
        project = lb.create_project("changelog")
        first = lb.wait_job(lb.crawl(project.id, site.base + "/").job_id, timeout=120)
        (source,) = lb.list_sources(project.id).items
        assert (source.kind, source.status, source.documents) == ("crawl", "idle", 1)
        assert source.last_job_id == first.id

        # Every second, with nobody asking: `serve`'s worker queues the due syncs.
        scheduled = lb.update_source(source.id, sync_interval_seconds=1)
        assert scheduled.next_sync_at is not None
        deadline = time.monotonic() + 120
        while len(_syncs(lb, project.id)) < 3:
            assert time.monotonic() < deadline, lb.get_source(source.id)
            time.sleep(0.5)
        stopped = lb.update_source(source.id, sync_interval_seconds=None)
        assert stopped.next_sync_at is None

        while lb.get_source(source.id).status != "idle":
            time.sleep(0.2)
        job = lb.sync_source(source.id)
        with pytest.raises(Conflict) as busy:
            lb.sync_source(source.id)
        assert busy.value.status == 409
        assert lb.wait_job(job.job_id, timeout=120).status == "succeeded"
        assert lb.get_source(source.id).documents == 1

        deleted = lb.wait_job(lb.delete_source(source.id).job_id, timeout=120)
        assert deleted.kind == "source_delete"
        with pytest.raises(NotFound):
            lb.get_source(source.id)
        assert lb.list_documents(project.id).total == 0


def test_sources_and_jobs_async(server: LorebaseServer, site: LoopbackSite) -> None:
    async def flow() -> None:
        name = f"tia-{uuid.uuid4().hex[:6]}"
        async with AsyncClient(server.url) as lb:
            await lb.register(name, "a long password")
            await lb.login(name, "a long password")
            project = await lb.create_project("async sources")
            accepted = await lb.crawl(project.id, site.base + "/", tags=["news"])
            await lb.wait_job(accepted.job_id, timeout=120)
            (source,) = (await lb.list_sources(project.id)).items
            updated = await lb.update_source(source.id, tags=["news", "weekly"])
            jobs = await lb.list_jobs(kind="crawl")  # every project the caller can read
            assert updated.settings["tags"] == ["news", "weekly"]
            assert [job.id for job in jobs.items] == [accepted.job_id]
            assert (await lb.get_source(source.id)).uri == site.base + "/"
            await lb.wait_job((await lb.sync_source(source.id)).job_id, timeout=120)

    asyncio.run(flow())
