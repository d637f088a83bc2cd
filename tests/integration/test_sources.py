"""Sources as a resource (issue 17): a crawl registers its source; list, read, sync on request
(one at a time), change options and schedule, delete with its documents — through the API and
real workers, against a site on loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from lorebase.context import AppContext
from lorebase.main import create_app
from tests.factories import TestUser, create_project, register_user
from tests.ingestion import drain, job_of, upload
from tests.loopback_site import LoopbackSite

API = "/api/v1"


@pytest.fixture(scope="module")
def source_ctx(ctx: AppContext) -> AppContext:
    """The shared context with a crawler that may reach 127.0.0.0/8, fast."""
    settings = ctx.settings.model_copy(
        update={
            "crawl_allow_private_networks": ["127.0.0.0/8"],
            "crawl_timeout_seconds": 2.0,
            "crawl_delay_seconds": 0.0,
        }
    )
    return dataclasses.replace(ctx, settings=settings)


@pytest.fixture(scope="module")
async def http(source_ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(context=source_ctx)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture(scope="module")
def site() -> Iterator[LoopbackSite]:
    site = LoopbackSite()
    site.page("/", '<h1>Home</h1><p>Welcome home.</p><a href="/a">A</a> <a href="/b">B</a>')
    site.page("/a", "<h1>Alpha</h1><p>Apples grow on trees in the orchard.</p>", title="Alpha")
    site.page("/b", "<h1>Beta</h1><p>Bananas are yellow and curved.</p>", title="Beta")
    yield site
    site.stop()


@dataclasses.dataclass
class Crawled:
    user: TestUser
    project: dict[str, Any]
    source: dict[str, Any]
    job_id: str


async def crawled(
    http: httpx.AsyncClient, ctx: AppContext, site: LoopbackSite, *, run: bool = True
) -> Crawled:
    """A user, a project and one crawl source (synced unless `run` is False)."""
    user = await register_user(http)
    project = await create_project(http, user.headers)
    response = await http.post(
        f"{API}/knowledge/crawl",
        json={"project_id": project["id"], "url": site.base + "/", "max_depth": 1},
        headers=user.headers,
    )
    assert response.status_code == 202, response.text
    if run:
        await drain(ctx)
    listed = await http.get(f"{API}/projects/{project['id']}/sources", headers=user.headers)
    assert listed.status_code == 200, listed.text
    (source,) = listed.json()["items"]
    return Crawled(user, project, source, response.json()["job_id"])


async def source_of(http: httpx.AsyncClient, c: Crawled) -> dict[str, Any]:
    response = await http.get(f"{API}/sources/{c.source['id']}", headers=c.user.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def count(ctx: AppContext, sql: str, *params: Any) -> int:
    async with ctx.db.connection() as conn:
        cursor = await conn.execute(sql, params)
        row = await cursor.fetchone()
    assert row is not None
    return int(row["n"])


async def test_a_crawl_registers_a_source_that_shows_its_last_sync(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    c = await crawled(http, source_ctx, site)
    source = c.source
    assert source["kind"] == "crawl"
    assert source["uri"] == site.base + "/"
    assert source["settings"]["max_depth"] == 1
    assert source["status"] == "idle", source
    assert source["last_job_id"] == c.job_id
    assert source["last_error"] is None
    assert source["last_synced_at"] is not None
    assert source["sync_interval_seconds"] is None
    assert source["next_sync_at"] is None
    assert (source["documents"], source["retired_documents"]) == (3, 0)
    assert await source_of(http, c) == source
    listed = await http.get(f"{API}/projects/{c.project['id']}/sources", headers=c.user.headers)
    assert listed.json()["total"] == 1


async def test_sync_queues_one_job_and_refuses_a_second_while_it_is_under_way(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    c = await crawled(http, source_ctx, site)
    first = await http.post(f"{API}/sources/{c.source['id']}/sync", headers=c.user.headers)
    assert first.status_code == 202, first.text
    job_id = first.json()["job_id"]
    queued = await source_of(http, c)
    assert (queued["status"], queued["last_job_id"]) == ("queued", job_id)

    again = await http.post(f"{API}/sources/{c.source['id']}/sync", headers=c.user.headers)
    assert again.status_code == 409, again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert job_id in again.json()["detail"]

    hits = len(site.hits)
    await drain(source_ctx)
    job = await job_of(http, c.user.headers, job_id)
    assert (job["kind"], job["status"]) == ("crawl", "succeeded"), job
    assert len(site.hits) > hits  # the site was fetched again
    synced = await source_of(http, c)
    assert synced["status"] == "idle"
    assert synced["last_synced_at"] > c.source["last_synced_at"]
    assert synced["documents"] == 3  # the same pages, no duplicates

    # Once it finished, another sync may run.
    third = await http.post(f"{API}/sources/{c.source['id']}/sync", headers=c.user.headers)
    assert third.status_code == 202
    await drain(source_ctx)


async def test_a_resubmitted_crawl_and_a_sync_run_one_at_a_time(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    """`POST /knowledge/crawl` for the same URL queues a second job; the queue lock makes the
    two run one after the other."""
    c = await crawled(http, source_ctx, site, run=False)
    again = await http.post(
        f"{API}/knowledge/crawl",
        json={"project_id": c.project["id"], "url": site.base + "/", "max_depth": 1},
        headers=c.user.headers,
    )
    assert again.status_code == 202
    await drain(source_ctx)
    jobs = [await job_of(http, c.user.headers, j) for j in (c.job_id, again.json()["job_id"])]
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"]
    first, second = sorted(jobs, key=lambda j: j["started_at"])
    assert first["finished_at"] <= second["started_at"], jobs
    assert (await source_of(http, c))["status"] == "idle"


async def test_cancelling_a_queued_sync_leaves_the_source_idle_with_the_reason(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    c = await crawled(http, source_ctx, site, run=False)
    cancel = await http.post(f"{API}/jobs/{c.job_id}/cancel", headers=c.user.headers)
    assert cancel.json()["status"] == "cancelled"
    source = await source_of(http, c)
    assert (source["status"], source["last_error"]) == ("idle", "cancelled on request")
    assert source["last_synced_at"] is None


async def test_update_sets_the_schedule_and_the_options(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    c = await crawled(http, source_ctx, site)
    response = await http.put(
        f"{API}/sources/{c.source['id']}",
        json={"sync_interval_seconds": 3600, "max_pages": 2, "tags": ["docs", "docs"]},
        headers=c.user.headers,
    )
    assert response.status_code == 200, response.text
    source = response.json()
    assert source["sync_interval_seconds"] == 3600
    synced = datetime.fromisoformat(source["last_synced_at"])
    assert datetime.fromisoformat(source["next_sync_at"]) - synced == timedelta(hours=1)
    assert (source["settings"]["max_pages"], source["settings"]["tags"]) == (2, ["docs"])
    assert source["settings"]["max_depth"] == 1  # untouched

    # The next sync runs with the new options: at most two pages, tagged.
    sync = await http.post(f"{API}/sources/{c.source['id']}/sync", headers=c.user.headers)
    await drain(source_ctx)
    job = await job_of(http, c.user.headers, sync.json()["job_id"])
    assert (job["status"], len(job["document_ids"])) == ("succeeded", 2), job
    after = await source_of(http, c)
    assert datetime.fromisoformat(after["next_sync_at"]) > datetime.fromisoformat(
        source["next_sync_at"]
    )

    cleared = await http.put(
        f"{API}/sources/{c.source['id']}",
        json={"sync_interval_seconds": None, "max_pages": None},
        headers=c.user.headers,
    )
    assert cleared.status_code == 200
    assert cleared.json()["sync_interval_seconds"] is None
    assert cleared.json()["next_sync_at"] is None
    assert cleared.json()["settings"]["max_pages"] == source_ctx.settings.crawl_max_pages


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sync_interval_seconds": 59}, "sync_interval_seconds"),  # under the minimum (60)
        ({"sync_interval_seconds": 0}, "sync_interval_seconds"),
        ({"sync_interval_seconds": 10**9}, "sync_interval_seconds"),
        ({"sync_interval_seconds": "hourly"}, "sync_interval_seconds"),
        ({"include": ["*.md"]}, "include"),  # a git option on a crawl source
        ({"max_depth": 99}, "max_depth"),
        ({"tags": None}, "tags"),
        ({"tags": [""]}, "tags"),
        ({"schedule": "daily"}, "schedule"),
    ],
)
async def test_update_refuses_bad_values_and_changes_nothing(
    http: httpx.AsyncClient,
    source_ctx: AppContext,
    site: LoopbackSite,
    body: dict[str, Any],
    field: str,
) -> None:
    c = await crawled(http, source_ctx, site, run=False)
    before = await source_of(http, c)
    response = await http.put(f"{API}/sources/{c.source['id']}", json=body, headers=c.user.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.text
    assert await source_of(http, c) == before


async def test_another_users_source_is_not_found_and_a_viewer_may_only_read(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    c = await crawled(http, source_ctx, site)
    stranger = await register_user(http)
    viewer = await register_user(http)
    member = await http.put(
        f"{API}/projects/{c.project['id']}/members/{viewer.id}",
        json={"role": "viewer"},
        headers=c.user.headers,
    )
    assert member.status_code == 200
    path = f"{API}/sources/{c.source['id']}"
    ghost = f"{API}/sources/00000000-0000-4000-8000-000000000000"
    writes = [("POST", "/sync", None), ("PUT", "", {"tags": ["x"]}), ("DELETE", "", None)]
    for method, suffix, body in [("GET", "", None), *writes]:
        hidden = await http.request(method, path + suffix, json=body, headers=stranger.headers)
        missing = await http.request(method, ghost + suffix, json=body, headers=stranger.headers)
        assert hidden.status_code == missing.status_code == 404, (method, hidden.text)
        assert hidden.json()["detail"] == missing.json()["detail"] == "source not found"
    listed = await http.get(f"{API}/projects/{c.project['id']}/sources", headers=stranger.headers)
    assert listed.status_code == 404

    assert (await http.get(path, headers=viewer.headers)).status_code == 200
    for method, suffix, body in writes:
        refused = await http.request(method, path + suffix, json=body, headers=viewer.headers)
        assert refused.status_code == 403, (method, refused.text)
    assert await source_of(http, c) == c.source  # nothing changed


async def test_delete_removes_the_documents_versions_and_chunks_then_the_source(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    c = await crawled(http, source_ctx, site)
    kept = await upload(http, c.user.headers, c.project["id"], ("notes.md", b"# Notes\n\nKept."))
    await drain(source_ctx)
    ids = [str(i) for i in (await job_of(http, c.user.headers, c.job_id))["document_ids"]]
    assert len(ids) == 3
    chunks = "SELECT count(*) AS n FROM knowledge_items WHERE document_id = ANY(%s::uuid[])"
    versions = "SELECT count(*) AS n FROM document_versions WHERE document_id = ANY(%s::uuid[])"
    assert await count(source_ctx, chunks, ids) > 0

    response = await http.delete(f"{API}/sources/{c.source['id']}", headers=c.user.headers)
    assert response.status_code == 202, response.text
    assert (await source_of(http, c))["status"] == "deleting"
    again = await http.delete(f"{API}/sources/{c.source['id']}", headers=c.user.headers)
    assert again.status_code == 409
    sync = await http.post(f"{API}/sources/{c.source['id']}/sync", headers=c.user.headers)
    assert sync.status_code == 409
    resubmit = await http.post(
        f"{API}/knowledge/crawl",
        json={"project_id": c.project["id"], "url": site.base + "/"},
        headers=c.user.headers,
    )
    assert resubmit.status_code == 409, resubmit.text

    await drain(source_ctx)
    job = await job_of(http, c.user.headers, response.json()["job_id"])
    assert (job["kind"], job["status"], job["result"]) == (
        "source_delete",
        "succeeded",
        {"documents": 3},
    )
    gone = await http.get(f"{API}/sources/{c.source['id']}", headers=c.user.headers)
    assert gone.status_code == 404
    assert await count(source_ctx, chunks, ids) == 0
    assert await count(source_ctx, versions, ids) == 0
    for document_id in ids:
        doc = await http.get(f"{API}/documents/{document_id}", headers=c.user.headers)
        assert doc.status_code == 404
    other = await http.get(f"{API}/documents/{kept.json()['document_id']}", headers=c.user.headers)
    assert other.status_code == 200  # not the source's


async def test_delete_cancels_a_sync_under_way_first(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    c = await crawled(http, source_ctx, site, run=False)
    response = await http.delete(f"{API}/sources/{c.source['id']}", headers=c.user.headers)
    assert response.status_code == 202
    assert (await job_of(http, c.user.headers, c.job_id))["status"] == "cancelled"
    await drain(source_ctx)
    assert (await job_of(http, c.user.headers, response.json()["job_id"]))["status"] == (
        "succeeded"
    )
    gone = await http.get(f"{API}/sources/{c.source['id']}", headers=c.user.headers)
    assert gone.status_code == 404


async def test_a_failed_delete_leaves_everything_in_place(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    """The database refuses the last statement (deleting the source row): the documents deleted
    before it in the same transaction come back, and the source says why it is still there."""
    c = await crawled(http, source_ctx, site)
    source_id = c.source["id"]
    async with source_ctx.db.connection() as conn:
        await conn.execute(f"""
            CREATE FUNCTION refuse_{source_id.replace('-', '_')}() RETURNS trigger
            LANGUAGE plpgsql AS $$ BEGIN
                IF OLD.id = '{source_id}' THEN RAISE EXCEPTION 'refused by the test'; END IF;
                RETURN OLD;
            END $$;
            CREATE TRIGGER refuse_delete BEFORE DELETE ON sources FOR EACH ROW
                EXECUTE FUNCTION refuse_{source_id.replace('-', '_')}();
            """)
    try:
        response = await http.delete(f"{API}/sources/{source_id}", headers=c.user.headers)
        await drain(source_ctx)
    finally:
        async with source_ctx.db.connection() as conn:
            await conn.execute("DROP TRIGGER refuse_delete ON sources")
            await conn.execute(f"DROP FUNCTION refuse_{source_id.replace('-', '_')}()")
    job = await job_of(http, c.user.headers, response.json()["job_id"])
    assert job["status"] == "failed", job
    source = await source_of(http, c)
    assert source["status"] == "failed"
    assert source["last_error"].startswith("deletion failed: internal error")
    assert source["documents"] == 3
    chunks = "SELECT count(*) AS n FROM knowledge_items WHERE project_id = %s"
    assert await count(source_ctx, chunks, c.project["id"]) > 0

    # Deleting again works once the cause is gone.
    retry = await http.delete(f"{API}/sources/{source_id}", headers=c.user.headers)
    assert retry.status_code == 202
    await drain(source_ctx)
    assert (await http.get(f"{API}/sources/{source_id}", headers=c.user.headers)).status_code == 404


async def test_jobs_list_filters_by_kind_and_status_across_the_callers_projects(
    http: httpx.AsyncClient, source_ctx: AppContext, site: LoopbackSite
) -> None:
    c = await crawled(http, source_ctx, site)
    second = await create_project(http, c.user.headers)
    text = await http.post(
        f"{API}/knowledge/text",
        json={"project_id": second["id"], "name": "t.md", "text": "# T\n\nSome text."},
        headers=c.user.headers,
    )
    assert text.status_code == 202
    stranger = await crawled(http, source_ctx, site, run=False)

    mine = await http.get(f"{API}/jobs", headers=c.user.headers)
    assert mine.status_code == 200, mine.text
    ids = {job["id"] for job in mine.json()["items"]}
    assert ids == {c.job_id, text.json()["job_id"]}
    assert mine.json()["total"] == 2
    crawls = await http.get(f"{API}/jobs", params={"kind": "crawl"}, headers=c.user.headers)
    assert [job["id"] for job in crawls.json()["items"]] == [c.job_id]
    queued = await http.get(
        f"{API}/jobs", params={"status": "queued", "kind": "text"}, headers=c.user.headers
    )
    assert [job["id"] for job in queued.json()["items"]] == [text.json()["job_id"]]
    scoped = await http.get(
        f"{API}/jobs", params={"project_id": second["id"]}, headers=c.user.headers
    )
    assert [job["id"] for job in scoped.json()["items"]] == [text.json()["job_id"]]
    page = await http.get(f"{API}/jobs", params={"skip": 5}, headers=c.user.headers)
    assert (page.json()["items"], page.json()["total"]) == ([], 2)
    other = await http.get(f"{API}/jobs", headers=stranger.user.headers)
    assert [job["id"] for job in other.json()["items"]] == [stranger.job_id]

    bad = await http.get(f"{API}/jobs", params={"kind": "nope"}, headers=c.user.headers)
    assert bad.status_code == 422
    assert "kind" in bad.text
    hidden = await http.get(
        f"{API}/jobs", params={"project_id": c.project["id"]}, headers=stranger.user.headers
    )
    assert hidden.status_code == 404
    await drain(source_ctx)
