"""Sources as a resource (issue 17): a crawl registers its source; list, read, sync on request
(one at a time), change options and schedule, 404 for strangers and 403 for viewers — through
the API and real workers, against a site on loopback."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from lorebase.context import AppContext
from tests.factories import create_project, register_user
from tests.ingestion import drain, job_of
from tests.integration.test_git import GIT_ENV
from tests.loopback_site import LoopbackSite
from tests.sourcing import API, api_client, crawled, loopback_ctx, source_of, three_pages


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


async def test_a_git_source_takes_globs_not_crawl_options(
    http: httpx.AsyncClient, source_ctx: AppContext, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("# Widget\n\nWidget renders charts.\n")
    (repo / "widget.py").write_text("def render() -> str:\n    return 'chart'\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
        subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True)
    admin = await register_user(http, admin=True, ctx=source_ctx)  # file:// needs an admin
    project = await create_project(http, admin.headers)
    url = repo.as_uri()
    response = await http.post(
        f"{API}/knowledge/git",
        json={"project_id": project["id"], "url": url, "ref": "main"},
        headers=admin.headers,
    )
    assert response.status_code == 202, response.text
    await drain(source_ctx)
    listed = await http.get(f"{API}/projects/{project['id']}/sources", headers=admin.headers)
    (source,) = listed.json()["items"]
    assert (source["kind"], source["uri"], source["documents"]) == ("git", f"{url}#main", 2)
    assert "allow_file" not in source["settings"]

    path = f"{API}/sources/{source['id']}"
    wrong = await http.put(path, json={"max_depth": 2}, headers=admin.headers)
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "max_depth"
    assert "does not apply to a git source" in wrong.json()["detail"]
    globs = await http.put(path, json={"include": ["*.md"]}, headers=admin.headers)
    assert globs.status_code == 200, globs.text
    assert globs.json()["settings"]["include"] == ["*.md"]
    sync = await http.post(f"{path}/sync", headers=admin.headers)
    await drain(source_ctx)
    assert (await job_of(http, admin.headers, sync.json()["job_id"]))["status"] == "succeeded"
