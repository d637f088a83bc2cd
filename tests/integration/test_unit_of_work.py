"""A write that fails part-way leaves nothing half-written: each service runs its writes in one
transaction (its unit of work), and a failure after the first row rolls all of them back.

The failures are real PostgreSQL errors, raised by a trigger this test installs on one table
for rows of its own only (and drops after), so every other row in the session is untouched."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from lorebase.context import AppContext
from tests.factories import TestUser, create_project, register_user
from tests.ingestion import chunks_of, drain, job_of, upload


@asynccontextmanager
async def failing_inserts(ctx: AppContext, table: str, condition: str) -> AsyncIterator[None]:
    """Make every INSERT into `table` whose NEW row meets `condition` (SQL over NEW) fail."""
    name = f"fail_{uuid.uuid4().hex[:12]}"
    async with ctx.db.connection() as conn:
        await conn.execute(f"""
            CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {condition} THEN RAISE EXCEPTION 'injected failure'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER {name} BEFORE INSERT ON {table}
            FOR EACH ROW EXECUTE FUNCTION {name}();
            """)
    try:
        yield
    finally:
        async with ctx.db.connection() as conn:
            await conn.execute(f"DROP TRIGGER {name} ON {table}; DROP FUNCTION {name}();")


async def _count(ctx: AppContext, sql: str, *params: Any) -> int:
    async with ctx.db.connection() as conn:
        cursor = await conn.execute(sql, params)
        row = await cursor.fetchone()
    assert row is not None
    return int(next(iter(row.values())))


async def _project_rows(ctx: AppContext, project_id: str) -> dict[str, int]:
    """Documents, versions, jobs and chunks of a project."""
    return {
        "documents": await _count(
            ctx, "SELECT count(*) FROM documents WHERE project_id = %s", project_id
        ),
        "versions": await _count(
            ctx,
            "SELECT count(*) FROM document_versions v JOIN documents d ON d.id = v.document_id "
            "WHERE d.project_id = %s",
            project_id,
        ),
        "jobs": await _count(ctx, "SELECT count(*) FROM jobs WHERE project_id = %s", project_id),
        "chunks": await _count(
            ctx, "SELECT count(*) FROM knowledge_items WHERE project_id = %s", project_id
        ),
    }


async def _owner(client: httpx.AsyncClient) -> tuple[TestUser, str]:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    return user, project["id"]


async def test_a_document_whose_job_cannot_be_queued_is_not_written(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user, project_id = await _owner(client)
    async with failing_inserts(ctx, "jobs", f"NEW.project_id = '{project_id}'"):
        response = await client.post(
            "/api/v1/documents",
            headers=user.headers,
            json={"project_id": project_id, "name": "a.md", "type": "markdown", "content": "x"},
        )
    assert response.status_code == 500
    assert await _project_rows(ctx, project_id) == {
        "documents": 0,
        "versions": 0,
        "jobs": 0,
        "chunks": 0,
    }, "the document and version rows written before the job went with it"


async def test_a_version_that_fails_after_its_row_keeps_the_previous_one(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user, project_id = await _owner(client)
    created = await client.post(
        "/api/v1/documents",
        headers=user.headers,
        json={"project_id": project_id, "name": "a.md", "type": "markdown", "content": "one"},
    )
    assert created.status_code == 201, created.text
    document_id = created.json()["id"]
    await drain(ctx)
    before = await _project_rows(ctx, project_id)
    assert before == {"documents": 1, "versions": 1, "jobs": 1, "chunks": 1}

    async with failing_inserts(ctx, "jobs", f"NEW.project_id = '{project_id}'"):
        response = await client.post(
            f"/api/v1/documents/{document_id}/version",
            headers=user.headers,
            json={"content": "two", "bump": "major"},
        )
    assert response.status_code == 500

    assert await _project_rows(ctx, project_id) == before
    document = (await client.get(f"/api/v1/documents/{document_id}", headers=user.headers)).json()
    assert (document["version"], document["content"], document["status"]) == (
        "1.0.0",
        "one",
        "ready",
    ), "the bump, the new content and the pending status were rolled back"


async def test_an_upload_failing_on_its_second_file_writes_none(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user, project_id = await _owner(client)
    condition = f"NEW.project_id = '{project_id}' AND NEW.name = 'b.md'"
    async with failing_inserts(ctx, "documents", condition):
        response = await upload(
            client, user.headers, project_id, ("a.md", b"# A\n\nfirst"), ("b.md", b"# B\n\nsecond")
        )
    assert response.status_code == 500
    assert await _project_rows(ctx, project_id) == {
        "documents": 0,
        "versions": 0,
        "jobs": 0,
        "chunks": 0,
    }, "a.md, written before b.md failed, is gone with its job"


async def test_a_failed_index_store_leaves_no_partial_chunks(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user, project_id = await _owner(client)
    text = "\n\n".join(f"# Part {i}\n\n" + f"word{i} " * 400 for i in range(6)).encode()
    async with failing_inserts(
        ctx, "knowledge_items", f"NEW.project_id = '{project_id}' AND NEW.chunk_index = 3"
    ):
        response = await upload(client, user.headers, project_id, ("long.md", text))
        assert response.status_code == 202, response.text
        accepted = response.json()
        await drain(ctx)
    job = await job_of(client, user.headers, accepted["job_id"])
    assert job["status"] == "failed"
    assert await chunks_of(ctx, accepted["document_id"]) == [], "chunks 0-2 were not kept"


async def test_a_project_whose_owner_cannot_be_added_is_not_created(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user = await register_user(client)
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    async with failing_inserts(ctx, "project_members", f"NEW.user_id = '{user.id}'"):
        response = await client.post("/api/v1/projects", headers=user.headers, json={"name": name})
    assert response.status_code == 500
    assert await _count(ctx, "SELECT count(*) FROM projects WHERE name = %s", name) == 0
    listed = await client.get("/api/v1/projects", headers=user.headers)
    assert listed.json()["total"] == 0


async def test_a_task_whose_dependencies_cannot_be_stored_is_not_created(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user, project_id = await _owner(client)
    first = await client.post(
        "/api/v1/tasks", headers=user.headers, json={"project_id": project_id, "title": "first"}
    )
    assert first.status_code == 201, first.text
    dependency = first.json()["id"]
    async with failing_inserts(ctx, "task_dependencies", f"NEW.depends_on_id = '{dependency}'"):
        response = await client.post(
            "/api/v1/tasks",
            headers=user.headers,
            json={"project_id": project_id, "title": "second", "dependencies": [dependency]},
        )
    assert response.status_code == 500
    tasks = await client.get(
        "/api/v1/tasks", headers=user.headers, params={"project_id": project_id}
    )
    assert [task["title"] for task in tasks.json()["items"]] == ["first"]
