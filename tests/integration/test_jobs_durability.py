"""Jobs survive failures: same-transaction deferral, retries with backoff, dead workers,
cancellation, and workers shutting down mid-job."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import math
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from lorebase.context import AppContext
from lorebase.jobs import background_worker
from lorebase.knowledge import repository
from lorebase.knowledge.enqueue import create_job
from lorebase.knowledge.runner import in_process_worker, job_handler, worker_options
from lorebase.providers.registry import build_embedder
from lorebase.settings import Settings
from tests.contract.fake_vendor import FakeVendor, Reply
from tests.factories import TestUser, create_project, register_user
from tests.ingestion import chunks_of, drain, job_of, upload

EMBED = "/v1/embeddings"


def vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [digest[i % len(digest)] - 127.5 + i % 7 for i in range(384)]
    norm = math.sqrt(sum(x * x for x in raw))
    return [x / norm for x in raw]


def embeddings_reply(path: str, body: Any) -> Reply:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return Reply(
        json={
            "object": "list",
            "model": body["model"],
            "data": [
                {"object": "embedding", "index": i, "embedding": vector(str(text))}
                for i, text in enumerate(inputs)
            ],
            "usage": {"prompt_tokens": 1, "total_tokens": 1},
        }
    )


@pytest.fixture
def vendor() -> Iterator[FakeVendor]:
    fake = FakeVendor(default=embeddings_reply)
    yield fake
    fake.stop()


def vendor_ctx(ctx: AppContext, vendor: FakeVendor, **settings: Any) -> AppContext:
    """The shared context, embedding through the OpenAI SDK against the loopback vendor."""
    values: dict[str, Any] = {
        "embedding_provider": "openai",
        "embedding_model": "text-embedding-3-small",
        "embedding_dimensions": 384,
        "openai_api_key": SecretStr("sk-test-key-000000000000000000000000"),
        "openai_base_url": vendor.url + "/v1",
        "provider_max_retries": 0,
        "provider_read_timeout": 5.0,
        "job_retry_base_seconds": 0.0,
    }
    values.update(settings)
    new_settings = ctx.settings.model_copy(update=values)
    return dataclasses.replace(
        ctx, settings=new_settings, embedder=build_embedder(new_settings, ctx.registry)
    )


async def owner_and_project(client: httpx.AsyncClient) -> tuple[TestUser, dict[str, Any]]:
    user = await register_user(client)
    return user, await create_project(client, user.headers)


def unique_markdown(paragraphs: int = 3) -> bytes:
    marker = uuid.uuid4().hex
    body = "\n\n".join(
        f"## Part {i}\n\nPart {i} of document {marker} describes step {i} in detail. " * 3
        for i in range(paragraphs)
    )
    return f"# Manual {marker}\n\n{body}\n".encode()


async def test_job_and_queue_entry_roll_back_with_their_transaction(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    _, project = await owner_and_project(client)
    created: list[uuid.UUID] = []

    async def failing_upload() -> None:
        async with ctx.db.transaction() as conn:
            row = await create_job(
                conn, project_id=uuid.UUID(project["id"]), kind="crawl", payload={"url": "x"}
            )
            created.append(row["id"])
            raise RuntimeError("the document insert failed")

    with pytest.raises(RuntimeError):
        await failing_upload()
    (job_id,) = created
    async with ctx.db.connection() as conn:
        assert await repository.get_job(conn, job_id=job_id) is None
        cursor = await conn.execute(
            "SELECT count(*) AS n FROM procrastinate_jobs WHERE args->>'job_id' = %s",
            (str(job_id),),
        )
        row = await cursor.fetchone()
    assert row is not None
    assert row["n"] == 0, "the queue entry rolled back with the job record"


async def test_provider_outage_is_retried_with_backoff(
    ctx: AppContext, client: httpx.AsyncClient, vendor: FakeVendor
) -> None:
    vctx = vendor_ctx(ctx, vendor)
    # A job another test of this process left queued would take the one scripted 503.
    await drain(vctx)
    user, project = await owner_and_project(client)
    accepted = (
        await upload(client, user.headers, project["id"], ("m.md", unique_markdown()))
    ).json()
    vendor.script(EMBED, Reply(503, {"error": {"message": "overloaded", "type": "server_error"}}))
    await drain(vctx)
    job = await job_of(client, user.headers, accepted["job_id"])
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    assert len(vendor.calls(EMBED)) >= 2
    chunks = await chunks_of(ctx, accepted["document_id"])
    assert chunks
    assert {c["embedding_model"] for c in chunks} == {vctx.embedder.model_id}
    assert vctx.embedder.model_id.startswith("text-embedding-3-small")


async def test_provider_outage_outlasting_the_retries_fails_readably(
    ctx: AppContext, client: httpx.AsyncClient, vendor: FakeVendor
) -> None:
    vctx = vendor_ctx(ctx, vendor, job_max_attempts=2)
    user, project = await owner_and_project(client)
    accepted = (
        await upload(client, user.headers, project["id"], ("m.md", unique_markdown()))
    ).json()
    vendor.default = lambda path, body: Reply(503, {"error": {"message": "down"}})
    await drain(vctx)
    job = await job_of(client, user.headers, accepted["job_id"])
    assert job["status"] == "failed"
    assert job["attempts"] == 2
    assert job["error"].startswith("the embedding provider is unavailable")
    assert "gave up after 2 attempts" in job["error"]
    document = await client.get(
        f"/api/v1/documents/{accepted['document_id']}", headers=user.headers
    )
    assert document.json()["status"] == "failed"

    # The same upload again retries the failed document instead of answering "duplicate".
    vendor.default = embeddings_reply
    again = await upload(client, user.headers, project["id"], ("m.md", unique_markdown()))
    assert again.status_code == 202


async def test_a_dead_workers_job_is_taken_up_again(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user, project = await owner_and_project(client)
    accepted = (
        await upload(client, user.headers, project["id"], ("d.md", unique_markdown()))
    ).json()
    async with ctx.db.connection() as conn:
        # A worker took the job, then its machine vanished an hour ago.
        cursor = await conn.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) "
            "VALUES (now() - interval '1 hour') RETURNING id"
        )
        dead = await cursor.fetchone()
        assert dead is not None
        await conn.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s "
            "WHERE args->>'job_id' = %s",
            (dead["id"], accepted["job_id"]),
        )
        await conn.execute(
            "UPDATE jobs SET status = 'running', attempts = 1, heartbeat_at = now() - interval "
            "'1 hour' WHERE id = %s",
            (accepted["job_id"],),
        )
    await drain(ctx)
    job = await job_of(client, user.headers, accepted["job_id"])
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2
    chunks = await chunks_of(ctx, accepted["document_id"])
    assert len({c["chunk_index"] for c in chunks}) == len(chunks)


async def wait_for(
    client: httpx.AsyncClient, user: TestUser, job_id: str, statuses: set[str], timeout: float = 30
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = await job_of(client, user.headers, job_id)
        if job["status"] in statuses:
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.1)


async def test_cancelling_a_running_job(
    ctx: AppContext, client: httpx.AsyncClient, vendor: FakeVendor
) -> None:
    vctx = vendor_ctx(ctx, vendor, job_lease_seconds=6.0)
    vendor.default = lambda path, body: dataclasses.replace(embeddings_reply(path, body), delay=3)
    user, project = await owner_and_project(client)
    accepted = (
        await upload(client, user.headers, project["id"], ("c.md", unique_markdown()))
    ).json()
    async with background_worker(
        vctx.db, handler=job_handler(vctx), options=worker_options(vctx, poll_seconds=0.2)
    ):
        await wait_for(client, user, accepted["job_id"], {"running"})
        response = await client.post(
            f"/api/v1/jobs/{accepted['job_id']}/cancel", headers=user.headers
        )
        assert response.status_code == 200
        job = await wait_for(client, user, accepted["job_id"], {"cancelled", "succeeded"})
    assert job["status"] == "cancelled"
    assert job["error"] == "cancelled on request"
    document = await client.get(
        f"/api/v1/documents/{accepted['document_id']}", headers=user.headers
    )
    assert document.json()["status"] == "failed"
    assert await chunks_of(ctx, accepted["document_id"]) == []


async def test_a_worker_shutting_down_hands_its_job_back(
    ctx: AppContext, client: httpx.AsyncClient, vendor: FakeVendor
) -> None:
    vctx = vendor_ctx(ctx, vendor, job_lease_seconds=6.0)
    vendor.default = lambda path, body: dataclasses.replace(embeddings_reply(path, body), delay=2)
    user, project = await owner_and_project(client)
    accepted = (
        await upload(client, user.headers, project["id"], ("s.md", unique_markdown()))
    ).json()
    options = worker_options(vctx, poll_seconds=0.2, shutdown_seconds=0.1)
    async with background_worker(vctx.db, handler=job_handler(vctx), options=options):
        await wait_for(client, user, accepted["job_id"], {"running"})
    job = await job_of(client, user.headers, accepted["job_id"])
    assert job["status"] == "queued"
    assert "worker shutdown" in job["error"]

    vendor.default = embeddings_reply
    await drain(vctx)
    job = await job_of(client, user.headers, accepted["job_id"])
    assert job["status"] == "succeeded"
    assert job["attempts"] == 2


async def test_the_worker_inside_serve_runs_unless_disabled(
    ctx: AppContext, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOREBASE_RUN_WORKER", "0")
    disabled = Settings(_env_file=None)  # type: ignore[call-arg]
    assert disabled.lorebase_run_worker is False, "`serve --no-worker` exports this variable"
    user, project = await owner_and_project(client)
    off = dataclasses.replace(
        ctx, settings=ctx.settings.model_copy(update={"lorebase_run_worker": False})
    )
    accepted = (
        await upload(client, user.headers, project["id"], ("w.md", unique_markdown()))
    ).json()
    async with in_process_worker(off):
        await asyncio.sleep(1.0)
    assert (await job_of(client, user.headers, accepted["job_id"]))["status"] == "queued"
    on = dataclasses.replace(
        ctx, settings=ctx.settings.model_copy(update={"lorebase_run_worker": True})
    )
    async with in_process_worker(on):
        job = await wait_for(client, user, accepted["job_id"], {"succeeded", "failed"}, timeout=120)
    assert job["status"] == "succeeded"


async def test_openapi_documents_single_and_multiple_upload_results(
    client: httpx.AsyncClient,
) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    upload_op = spec["paths"]["/api/v1/knowledge/upload"]["post"]
    accepted = upload_op["responses"]["202"]["content"]["application/json"]["schema"]
    shapes = {json_shape(option) for option in accepted["anyOf"]}
    assert shapes == {"object", "array"}
    assert {"413", "415"} <= set(upload_op["responses"])
    assert "/api/v1/jobs/{job_id}/cancel" in spec["paths"]
    assert "/api/v1/documents/{document_id}/version" in spec["paths"]


def json_shape(schema: dict[str, Any]) -> str:
    return "array" if schema.get("type") == "array" else "object"
