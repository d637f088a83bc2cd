"""Deleting a source (one job: its documents, versions and chunks, then the source; nothing
changes when it fails), and the jobs list across the caller's projects (issue 17)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from lorebase.context import AppContext
from tests.factories import create_project
from tests.ingestion import drain, job_of, upload
from tests.loopback_site import LoopbackSite
from tests.sourcing import API, api_client, count, crawled, loopback_ctx, source_of, three_pages


@pytest.fixture(scope="module")
def source_ctx(ctx: AppContext) -> AppContext:
    return loopback_ctx(ctx)


@pytest.fixture(scope="module")
async def http(source_ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(source_ctx) as client:
        yield client


@pytest.fixture(scope="module")
def site() -> Iterator[LoopbackSite]:
    site = three_pages()
    yield site
    site.stop()


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
