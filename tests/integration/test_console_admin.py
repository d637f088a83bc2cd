"""The console's own JSON: the administrators' overview (queue depth, jobs failed in the last
day, embedding spaces per project) and project members by username or e-mail."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from lorebase.context import AppContext
from tests.factories import DEFAULT_PASSWORD, TestUser, create_project, register_user
from tests.ingestion import drain, upload

GOOD = b"# Runbook\n\n## Paging\n\nAcknowledge a page within fifteen minutes.\n"


async def _overview(client: httpx.AsyncClient, user: TestUser) -> httpx.Response:
    return await client.get("/console/admin/overview", headers=user.headers)


async def test_overview_counts_the_queue_failures_and_spaces(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    admin = await register_user(client, admin=True, ctx=ctx)
    owner = await register_user(client)
    project = await create_project(client, owner.headers)
    empty = await create_project(client, owner.headers)
    broken = (
        await upload(client, owner.headers, project["id"], ("broken.pdf", b"%PDF-1.4 nope"))
    ).json()
    old = (await upload(client, owner.headers, project["id"], ("old.pdf", b"%PDF-1.4 x"))).json()
    await upload(client, owner.headers, project["id"], ("good.md", GOOD))
    await drain(ctx)
    async with ctx.db.connection() as conn:  # a failure from the day before yesterday
        await conn.execute(
            "UPDATE jobs SET finished_at = now() - interval '2 days' WHERE id = %s",
            (old["job_id"],),
        )
    await upload(client, owner.headers, project["id"], ("waiting.md", GOOD + b"more"))

    response = await _overview(client, admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["queue"]["queued"] >= 1
    assert body["queue"]["oldest_queued_at"]
    assert body["failed_window_hours"] == 24
    failed = {job["id"]: job for job in body["failed"]}
    assert old["job_id"] not in failed, "only the last day's failures"
    mine = failed[broken["job_id"]]
    assert mine["project_name"] == project["name"]
    assert mine["error"].startswith("broken.pdf: ")
    assert body["failed_total"] >= 1
    assert body["embedder"] == {"model": ctx.embedder.model_id, "dimension": ctx.embedder.dimension}
    rows = {p["id"]: p for p in body["projects"]}
    row = rows[project["id"]]
    assert row["embedding_model"] == ctx.embedder.model_id
    assert row["embedding_dim"] == ctx.embedder.dimension
    assert row["matches_configured"] is True
    assert row["stored"] == [
        {
            "embedding_model": ctx.embedder.model_id,
            "embedding_dim": ctx.embedder.dimension,
            "items": row["stored"][0]["items"],
            "documents": 1,
        }
    ]
    assert row["stored"][0]["items"] >= 1
    assert (row["queued"], row["running"], row["failed"]) == (1, 0, 1)
    fresh = rows[empty["id"]]
    assert (fresh["embedding_model"], fresh["stored"], fresh["matches_configured"]) == (
        None,
        [],
        None,
    )
    await drain(ctx)


async def test_overview_is_for_administrators_only(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user = await register_user(client)
    refused = await _overview(client, user)
    assert refused.status_code == 403
    assert "administrators" in refused.json()["detail"]
    anonymous = await client.get("/console/admin/overview")
    assert anonymous.status_code == 401
    admin = await register_user(client, admin=True, ctx=ctx)
    key = await client.post(
        "/api/v1/api-keys", json={"name": "ro", "scopes": ["read"]}, headers=admin.headers
    )
    scoped = await client.get(
        "/console/admin/overview", headers={"Authorization": f"Bearer {key.json()['key']}"}
    )
    assert scoped.status_code == 403, "an admin's key without the admin scope"


async def _register_with_email(client: httpx.AsyncClient, email: str) -> str:
    username = f"mail_{uuid.uuid4().hex[:10]}"
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": username, "password": DEFAULT_PASSWORD, "email": email},
    )
    assert response.status_code == 201, response.text
    return username


async def _invite(
    client: httpx.AsyncClient, caller: TestUser, project_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/console/projects/{project_id}/members", json=body, headers=caller.headers
    )


async def test_members_are_added_by_username_or_email_and_listed_by_name(
    client: httpx.AsyncClient,
) -> None:
    owner = await register_user(client)
    editor = await register_user(client)
    project = await create_project(client, owner.headers)
    email = f"{uuid.uuid4().hex[:8]}@example.org"
    by_mail = await _register_with_email(client, email)

    added = await _invite(client, owner, project["id"], user=editor.username.upper(), role="editor")
    assert added.status_code == 200, added.text
    assert added.json()["username"] == editor.username
    assert added.json()["role"] == "editor"
    mailed = await _invite(client, owner, project["id"], user=f"  {email.upper()} ", role="viewer")
    assert mailed.status_code == 200, mailed.text
    assert mailed.json()["username"] == by_mail

    listed = await client.get(f"/console/projects/{project['id']}/members", headers=owner.headers)
    assert [(m["username"], m["role"]) for m in listed.json()] == [
        (owner.username, "owner"),
        (editor.username, "editor"),
        (by_mail, "viewer"),
    ]
    assert listed.json()[2]["email"] == email
    # Roles change and members leave through the API's routes, by the listed user id.
    viewer_id = listed.json()[2]["user_id"]
    base = f"/api/v1/projects/{project['id']}/members/{viewer_id}"
    assert (await client.put(base, json={"role": "editor"}, headers=owner.headers)).json()[
        "role"
    ] == "editor"
    assert (await client.delete(base, headers=owner.headers)).status_code == 204
    after = await client.get(f"/console/projects/{project['id']}/members", headers=owner.headers)
    assert [m["username"] for m in after.json()] == [owner.username, editor.username]


async def test_member_form_errors_are_clear_and_owner_only(client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    editor = await register_user(client)
    stranger = await register_user(client)
    project = await create_project(client, owner.headers)
    await _invite(client, owner, project["id"], user=editor.username, role="editor")

    missing = await _invite(client, owner, project["id"], user="nobody_at_all", role="viewer")
    assert missing.status_code == 404
    assert missing.json()["detail"] == (
        "no user has the username or e-mail address 'nobody_at_all'"
    )
    shared = f"{uuid.uuid4().hex[:8]}@example.org"
    await _register_with_email(client, shared)
    await _register_with_email(client, shared)
    ambiguous = await _invite(client, owner, project["id"], user=shared, role="viewer")
    assert ambiguous.status_code == 409
    assert "give the username" in ambiguous.json()["detail"]
    bad_role = await _invite(client, owner, project["id"], user=editor.username, role="boss")
    assert bad_role.status_code == 422
    blank = await _invite(client, owner, project["id"], user="", role="viewer")
    assert blank.status_code == 422
    # Only owners: an editor is refused before any name is looked up; others see no project.
    as_editor = await _invite(client, editor, project["id"], user="nobody_at_all", role="viewer")
    assert as_editor.status_code == 403
    listing = await client.get(f"/console/projects/{project['id']}/members", headers=editor.headers)
    assert listing.status_code == 403
    hidden = await _invite(client, stranger, project["id"], user=editor.username, role="owner")
    assert hidden.status_code == 404
    demote = await _invite(client, owner, project["id"], user=owner.username, role="viewer")
    assert demote.status_code == 409
    assert "at least one owner" in demote.json()["detail"]
