"""The console's cookie session: accepted by the API in place of a bearer header, with the
CSRF header required on writes; refresh rotates the pair; sign-out clears it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.factories import create_project, register_user


async def _sign_in(client: httpx.AsyncClient, user: Any) -> str:
    response = await client.post(
        "/console/session", data={"username": user.username, "password": user.password}
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"]["username"] == user.username
    cookies = response.headers.get_list("set-cookie")
    access = next(c for c in cookies if c.startswith("lb_access="))
    assert "HttpOnly" in access
    assert "SameSite=lax" in access
    refresh = next(c for c in cookies if c.startswith("lb_refresh="))
    assert "Path=/console/session" in refresh
    assert "HttpOnly" in refresh
    csrf = client.cookies.get("lb_csrf")
    assert csrf
    return csrf


async def test_cookie_reads_and_csrf_guards_writes(client: httpx.AsyncClient) -> None:
    user = await register_user(client, prefix="console")
    csrf = await _sign_in(client, user)

    me = await client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["username"] == user.username

    forged = await client.post("/api/v1/projects", json={"name": "forged"})
    assert forged.status_code == 403
    assert "CSRF" in forged.json()["detail"]
    wrong = await client.post(
        "/api/v1/projects", json={"name": "forged"}, headers={"X-CSRF-Token": "nope"}
    )
    assert wrong.status_code == 403

    made = await client.post(
        "/api/v1/projects", json={"name": "by cookie"}, headers={"X-CSRF-Token": csrf}
    )
    assert made.status_code == 201, made.text
    role = await client.get(f"/console/projects/{made.json()['id']}/role")
    assert role.json()["role"] == "owner"


async def test_refresh_rotates_and_sign_out_clears(client: httpx.AsyncClient) -> None:
    user = await register_user(client, prefix="console")
    csrf = await _sign_in(client, user)
    old_access = client.cookies.get("lb_access")

    no_csrf = await client.post("/console/session/refresh")
    assert no_csrf.status_code == 403
    refreshed = await client.post("/console/session/refresh", headers={"X-CSRF-Token": csrf})
    assert refreshed.status_code == 200, refreshed.text
    assert client.cookies.get("lb_access") != old_access

    out = await client.delete("/console/session")
    assert out.status_code == 204
    client.cookies.clear()
    assert (await client.get("/api/v1/auth/me")).status_code == 401


async def test_bearer_still_wins_and_users_list_is_admin_only(
    client: httpx.AsyncClient, ctx: Any
) -> None:
    user = await register_user(client, prefix="console")
    admin = await register_user(client, prefix="console", admin=True, ctx=ctx)
    # A bearer request needs no CSRF header, cookie or not.
    project = await create_project(client, user.headers)
    assert project["owner_id"] == user.id
    assert (await client.get("/console/users", headers=user.headers)).status_code == 403
    listed = await client.get("/console/users?limit=500", headers=admin.headers)
    assert listed.status_code == 200
    assert user.username in {u["username"] for u in listed.json()["items"]}


async def test_pages_are_html_shells(client: httpx.AsyncClient) -> None:
    for path in ("/", "/login", "/projects", "/knowledge", "/ask", "/tasks", "/connect", "/admin"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert 'src="/static/console/console.js"' in response.text
    script = await client.get("/static/console/console.js")
    assert script.status_code == 200
