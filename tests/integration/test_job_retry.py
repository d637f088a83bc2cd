"""POST /jobs/{id}/retry: a failed or cancelled job queued again server-side, once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from lorebase.context import AppContext
from tests.contract.fake_vendor import FakeVendor, Reply
from tests.factories import create_project, register_user
from tests.ingestion import chunks_of, drain, job_of, upload
from tests.integration.test_jobs_durability import (
    embeddings_reply,
    owner_and_project,
    unique_markdown,
    vendor_ctx,
)

MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def vendor() -> Iterator[FakeVendor]:
    fake = FakeVendor(default=embeddings_reply)
    yield fake
    fake.stop()


async def _retry(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> httpx.Response:
    return await client.post(f"/api/v1/jobs/{job_id}/retry", headers=headers)


async def test_a_job_failed_by_a_provider_outage_succeeds_when_retried(
    ctx: AppContext, client: httpx.AsyncClient, vendor: FakeVendor
) -> None:
    vctx = vendor_ctx(ctx, vendor, job_max_attempts=1)
    user, project = await owner_and_project(client)
    accepted = (
        await upload(client, user.headers, project["id"], ("m.md", unique_markdown()))
    ).json()
    vendor.default = lambda path, body: Reply(503, {"error": {"message": "down"}})
    await drain(vctx)
    failed = await job_of(client, user.headers, accepted["job_id"])
    assert failed["status"] == "failed"

    vendor.default = embeddings_reply  # the provider is back
    response = await _retry(client, user.headers, accepted["job_id"])
    assert response.status_code == 202, response.text
    retried = response.json()
    assert retried["status"] == "queued"
    assert retried["retry_of"] == accepted["job_id"]
    assert retried["kind"] == failed["kind"]
    assert retried["document_ids"] == [accepted["document_id"]]
    document = await client.get(
        f"/api/v1/documents/{accepted['document_id']}", headers=user.headers
    )
    assert document.json()["status"] == "pending"
    assert "error" not in document.json()["metadata"]
    old = await job_of(client, user.headers, accepted["job_id"])
    assert old["retried_as"] == retried["id"]
    assert old["status"] == "failed", "the old job keeps its history"
    # Idempotent: a second retry (a double click, a client's retry) returns the same job.
    twice = await _retry(client, user.headers, accepted["job_id"])
    assert twice.status_code == 202
    assert twice.json()["id"] == retried["id"]

    await drain(vctx)
    done = await job_of(client, user.headers, retried["id"])
    assert done["status"] == "succeeded", done
    assert await chunks_of(ctx, accepted["document_id"])


async def test_a_cancelled_job_can_be_retried_and_a_retry_can_be_cancelled(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    body = {"project_id": project["id"], "url": "https://docs.example.com/", "max_depth": 1}
    crawl = await client.post("/api/v1/knowledge/crawl", json=body, headers=user.headers)
    assert crawl.status_code == 202, crawl.text
    job_id = crawl.json()["job_id"]
    cancelled = await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=user.headers)
    assert cancelled.json()["status"] == "cancelled"

    retried = await _retry(client, user.headers, job_id)
    assert retried.status_code == 202, retried.text
    again = retried.json()
    assert again["kind"] == "crawl"
    assert again["status"] == "queued"
    assert again["progress"]["done"] == 0
    assert again["error"] is None
    listed = await client.get(f"/api/v1/jobs?project_id={project['id']}", headers=user.headers)
    assert [j["id"] for j in listed.json()["items"]][:2] == [again["id"], job_id]
    stop = await client.post(f"/api/v1/jobs/{again['id']}/cancel", headers=user.headers)
    assert stop.status_code == 200
    assert stop.json()["status"] == "cancelled"


async def test_only_finished_unsuccessful_jobs_are_retried(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user, project = await owner_and_project(client)
    accepted = (
        await upload(client, user.headers, project["id"], ("q.md", unique_markdown()))
    ).json()
    queued = await _retry(client, user.headers, accepted["job_id"])
    assert queued.status_code == 409
    assert "this one is queued" in queued.json()["detail"]
    await drain(ctx)
    succeeded = await _retry(client, user.headers, accepted["job_id"])
    assert succeeded.status_code == 409
    assert "this one is succeeded" in succeeded.json()["detail"]
    missing = await _retry(client, user.headers, MISSING)
    assert missing.status_code == 404
    malformed = await _retry(client, user.headers, "not-a-uuid")
    assert malformed.status_code == 422


async def test_a_superseded_upload_is_not_retried(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user, project = await owner_and_project(client)
    first = (await upload(client, user.headers, project["id"], ("s.md", unique_markdown()))).json()
    await client.post(f"/api/v1/jobs/{first['job_id']}/cancel", headers=user.headers)
    newer = await upload(client, user.headers, project["id"], ("s.md", unique_markdown()))
    assert newer.json()["version"] != first["version"]
    response = await _retry(client, user.headers, first["job_id"])
    assert response.status_code == 409
    assert "superseded by version" in response.json()["detail"]
    old = await job_of(client, user.headers, first["job_id"])
    assert old["retried_as"] is None, "nothing was half-written"
    await drain(ctx)


async def test_retry_needs_an_editor_and_queues_one_job_under_concurrency(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    owner, project = await owner_and_project(client)
    viewer = await register_user(client)
    stranger = await register_user(client)
    await client.put(
        f"/api/v1/projects/{project['id']}/members/{viewer.id}",
        json={"role": "viewer"},
        headers=owner.headers,
    )
    accepted = (
        await upload(client, owner.headers, project["id"], ("r.md", unique_markdown()))
    ).json()
    await client.post(f"/api/v1/jobs/{accepted['job_id']}/cancel", headers=owner.headers)

    refused = await _retry(client, viewer.headers, accepted["job_id"])
    assert refused.status_code == 403
    assert "viewer" in refused.json()["detail"]
    hidden = await _retry(client, stranger.headers, accepted["job_id"])
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == "job not found"

    both = await asyncio.gather(*(_retry(client, owner.headers, accepted["job_id"]) for _ in "ab"))
    assert [r.status_code for r in both] == [202, 202]
    assert both[0].json()["id"] == both[1].json()["id"]
    listed = await client.get(
        f"/api/v1/jobs?project_id={project['id']}&status=queued", headers=owner.headers
    )
    assert listed.json()["total"] == 1
    await drain(ctx)
