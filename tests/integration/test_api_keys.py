from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from lorebase.auth.api_keys import LAST_USED_RESOLUTION_SECONDS
from lorebase.context import AppContext
from tests.factories import TestUser, create_project, register_user

KEYS = "/api/v1/api-keys"


async def _mint(client: httpx.AsyncClient, user: TestUser, **fields: Any) -> dict[str, Any]:
    body = {"name": "agent", "scopes": ["read"], **fields}
    response = await client.post(KEYS, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def _bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


async def _row(ctx: AppContext, key_id: str) -> dict[str, Any]:
    async with ctx.db.connection() as conn:
        cur = await conn.execute("SELECT * FROM api_keys WHERE id = %s", (key_id,))
        row = await cur.fetchone()
    assert row is not None
    return row


async def _sql(ctx: AppContext, sql: str, *params: Any) -> None:
    async with ctx.db.connection() as conn:
        await conn.execute(sql, params)


async def test_secret_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register_user(client)
    created = await _mint(client, user, name="ci bot", scopes=["read", "write", "read"])
    secret = created["key"]
    assert secret.startswith("lb_")
    assert len(secret) > 40
    assert created["prefix"] == secret[:10]
    assert created["scopes"] == ["read", "write"]
    assert created["last_used_at"] is None

    listed = await client.get(KEYS, headers=user.headers)
    fetched = await client.get(f"{KEYS}/{created['id']}", headers=user.headers)
    for response in (listed, fetched):
        assert response.status_code == 200
        assert secret not in response.text
        assert secret[10:] not in response.text
    assert listed.json()["total"] == 1
    assert "key" not in listed.json()["items"][0]
    assert "key" not in fetched.json()
    assert fetched.json()["prefix"] == created["prefix"]

    row = await _row(ctx, created["id"])
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert not any(secret in str(value) for value in row.values())
    assert not any(secret[10:] in str(value) for value in row.values())


async def test_key_authenticates_via_bearer_and_x_api_key(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    key = await _mint(client, user)
    for headers in (_bearer(key), {"X-API-Key": key["key"]}):
        me = await client.get("/api/v1/auth/me", headers=headers)
        assert me.status_code == 200, headers
        assert me.json()["id"] == user.id
    jwt_as_key = await client.get(
        "/api/v1/auth/me", headers={"X-API-Key": user.headers["Authorization"].split()[1]}
    )
    assert jwt_as_key.status_code == 401
    forged = key["key"][:-4] + "AAAA"
    for headers in ({"Authorization": f"Bearer {forged}"}, {"X-API-Key": forged}):
        assert (await client.get("/api/v1/auth/me", headers=headers)).status_code == 401


async def test_scopes_are_enforced(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    other = await register_user(client)
    project = await create_project(client, user.headers)
    url = f"/api/v1/projects/{project['id']}"
    read = _bearer(await _mint(client, user, scopes=["read"]))
    write = _bearer(await _mint(client, user, scopes=["write"]))
    admin = _bearer(await _mint(client, user, scopes=["admin"]))
    task_body = {"project_id": project["id"], "title": "t"}

    assert (await client.get(url, headers=read)).status_code == 200
    tasks = await client.get("/api/v1/tasks", params={"project_id": project["id"]}, headers=read)
    assert tasks.status_code == 200
    new_project = await client.post("/api/v1/projects", json={"name": "x"}, headers=read)
    assert new_project.status_code == 403
    assert (await client.put(url, json={"name": "x"}, headers=read)).status_code == 403
    assert (await client.post("/api/v1/tasks", json=task_body, headers=read)).status_code == 403

    new_project = await client.post("/api/v1/projects", json={"name": "w"}, headers=write)
    assert new_project.status_code == 201
    assert (await client.put(url, json={"description": "w"}, headers=write)).status_code == 200
    task = await client.post("/api/v1/tasks", json=task_body, headers=write)
    assert task.status_code == 201
    member = f"{url}/members/{other.id}"
    assert (await client.put(member, json={"role": "viewer"}, headers=write)).status_code == 403
    assert (await client.delete(url, headers=write)).status_code == 403
    assert (await client.get(url, headers=user.headers)).status_code == 200  # still there

    assert (await client.put(member, json={"role": "viewer"}, headers=admin)).status_code == 200
    assert (await client.delete(member, headers=admin)).status_code == 204
    assert (await client.delete(url, headers=admin)).status_code == 204


async def test_key_never_exceeds_the_users_role(client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    viewer = await register_user(client)
    project = await create_project(client, owner.headers)
    url = f"/api/v1/projects/{project['id']}"
    await client.put(f"{url}/members/{viewer.id}", json={"role": "viewer"}, headers=owner.headers)
    key = _bearer(await _mint(client, viewer, scopes=["admin"], project_id=project["id"]))
    assert (await client.get(url, headers=key)).status_code == 200
    assert (await client.put(url, json={"name": "x"}, headers=key)).status_code == 403
    assert (await client.delete(url, headers=key)).status_code == 403


async def test_project_bound_key_cannot_see_other_projects(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    bound_to = await create_project(client, user.headers)
    other = await create_project(client, user.headers)
    other_task = await client.post(
        "/api/v1/tasks", json={"project_id": other["id"], "title": "t"}, headers=user.headers
    )
    key = _bearer(await _mint(client, user, scopes=["write"], project_id=bound_to["id"]))

    assert (await client.get(f"/api/v1/projects/{bound_to['id']}", headers=key)).status_code == 200
    listed = await client.get("/api/v1/projects", headers=key)
    assert [p["id"] for p in listed.json()["items"]] == [bound_to["id"]]
    assert listed.json()["total"] == 1

    other_url = f"/api/v1/projects/{other['id']}"
    assert (await client.get(other_url, headers=key)).status_code == 404
    assert (await client.put(other_url, json={"name": "x"}, headers=key)).status_code == 404
    assert (await client.delete(other_url, headers=key)).status_code == 404
    tasks_elsewhere = await client.get(
        "/api/v1/tasks", params={"project_id": other["id"]}, headers=key
    )
    assert tasks_elsewhere.status_code == 404
    task_url = f"/api/v1/tasks/{other_task.json()['id']}"
    assert (await client.get(task_url, headers=key)).status_code == 404
    assert (await client.put(task_url, json={"title": "x"}, headers=key)).status_code == 404
    create_elsewhere = await client.post(
        "/api/v1/tasks", json={"project_id": other["id"], "title": "t"}, headers=key
    )
    assert create_elsewhere.status_code == 404
    # A child project under the bound one would be a project outside the binding.
    created = await client.post(
        "/api/v1/projects", json={"name": "x", "parent_id": bound_to["id"]}, headers=key
    )
    assert created.status_code == 403
    top_level = await client.post("/api/v1/projects", json={"name": "x"}, headers=key)
    assert top_level.status_code == 403


async def test_cannot_bind_a_key_to_an_invisible_project(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    stranger = await register_user(client)
    project = await create_project(client, stranger.headers)
    response = await client.post(
        KEYS, json={"name": "x", "scopes": ["read"], "project_id": project["id"]},
        headers=user.headers,
    )  # fmt: skip
    assert response.status_code == 404


async def test_last_used_at_is_stamped_but_throttled(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register_user(client)
    key = await _mint(client, user)
    assert (await _row(ctx, key["id"]))["last_used_at"] is None

    assert (await client.get("/api/v1/auth/me", headers=_bearer(key))).status_code == 200
    first = (await _row(ctx, key["id"]))["last_used_at"]
    assert first is not None
    assert abs((datetime.now(UTC) - first).total_seconds()) < 30
    shown = await client.get(f"{KEYS}/{key['id']}", headers=user.headers)
    assert shown.json()["last_used_at"] is not None

    # Within the resolution window a use writes nothing...
    assert (await client.get("/api/v1/auth/me", headers=_bearer(key))).status_code == 200
    assert (await _row(ctx, key["id"]))["last_used_at"] == first
    # ...and once the stamp is older than the window, the next use refreshes it.
    old = datetime.now(UTC) - timedelta(seconds=LAST_USED_RESOLUTION_SECONDS + 5)
    await _sql(ctx, "UPDATE api_keys SET last_used_at = %s WHERE id = %s", old, key["id"])
    assert (await client.get("/api/v1/auth/me", headers=_bearer(key))).status_code == 200
    refreshed = (await _row(ctx, key["id"]))["last_used_at"]
    assert refreshed > old + timedelta(seconds=LAST_USED_RESOLUTION_SECONDS)


async def test_expiry_is_honoured(client: httpx.AsyncClient, ctx: AppContext) -> None:
    user = await register_user(client)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = await client.post(
        KEYS, json={"name": "x", "scopes": ["read"], "expires_at": past}, headers=user.headers
    )
    assert response.status_code == 422

    # An offset-less timestamp is read as UTC rather than failing the comparison.
    naive = (datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    key = await _mint(client, user, expires_at=naive)
    assert datetime.fromisoformat(key["expires_at"]).utcoffset() == timedelta(0)
    assert (await client.get("/api/v1/auth/me", headers=_bearer(key))).status_code == 200

    await _sql(
        ctx,
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
        key["id"],
    )
    expired = await client.get("/api/v1/auth/me", headers=_bearer(key))
    assert expired.status_code == 401
    assert expired.headers["content-type"] == "application/problem+json"


async def test_revocation_is_effective_on_the_next_request(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    key = await _mint(client, user)
    keep = await _mint(client, user, name="keep")
    assert (await client.get("/api/v1/auth/me", headers=_bearer(key))).status_code == 200
    assert (await client.delete(f"{KEYS}/{key['id']}", headers=user.headers)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=_bearer(key))).status_code == 401
    via_header = await client.get("/api/v1/auth/me", headers={"X-API-Key": key["key"]})
    assert via_header.status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=_bearer(keep))).status_code == 200
    listed = await client.get(KEYS, headers=user.headers)
    assert [k["id"] for k in listed.json()["items"]] == [keep["id"]]
    assert (await client.get(f"{KEYS}/{key['id']}", headers=user.headers)).status_code == 404
    assert (await client.delete(f"{KEYS}/{key['id']}", headers=user.headers)).status_code == 404


async def test_a_key_cannot_manage_keys(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    key = await _mint(client, user, scopes=["read", "write", "admin"])
    headers = _bearer(key)
    minted = await client.post(KEYS, json={"name": "child", "scopes": ["read"]}, headers=headers)
    assert minted.status_code == 403
    assert minted.headers["content-type"] == "application/problem+json"
    assert (await client.get(KEYS, headers=headers)).status_code == 403
    assert (await client.get(f"{KEYS}/{key['id']}", headers=headers)).status_code == 403
    assert (await client.delete(f"{KEYS}/{key['id']}", headers=headers)).status_code == 403
    listed = await client.get(KEYS, headers=user.headers)
    assert listed.json()["total"] == 1


async def test_other_users_keys_are_invisible(client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    other = await register_user(client)
    key = await _mint(client, owner)
    assert (await client.get(f"{KEYS}/{key['id']}", headers=other.headers)).status_code == 404
    assert (await client.delete(f"{KEYS}/{key['id']}", headers=other.headers)).status_code == 404
    assert (await client.get(KEYS, headers=other.headers)).json()["total"] == 0
    assert (await client.get("/api/v1/auth/me", headers=_bearer(key))).status_code == 200


async def test_bad_key_requests_are_422(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    for bad in (
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["superuser"]},
        {"name": "", "scopes": ["read"]},
        {"name": "x", "scopes": ["read"], "secret": "mine"},
    ):
        response = await client.post(KEYS, json=bad, headers=user.headers)
        assert response.status_code == 422, bad


async def test_deactivated_user_key_stops_working(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register_user(client)
    key = await _mint(client, user)
    await _sql(ctx, "UPDATE users SET is_active = false WHERE id = %s", user.id)
    assert (await client.get("/api/v1/auth/me", headers=_bearer(key))).status_code == 401


async def test_admin_power_needs_the_admin_scope(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    owner = await register_user(client)
    admin = await register_user(client, admin=True, ctx=ctx)
    project = await create_project(client, owner.headers)
    url = f"/api/v1/projects/{project['id']}"
    read_key = _bearer(await _mint(client, admin, scopes=["read"]))
    admin_key = _bearer(await _mint(client, admin, scopes=["admin"]))
    assert (await client.get(url, headers=admin.headers)).status_code == 200
    assert (await client.get(url, headers=read_key)).status_code == 404
    assert (await client.get(url, headers=admin_key)).status_code == 200
