from __future__ import annotations

import uuid

import httpx

from tests.factories import create_project, register_user


async def test_project_crud(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(
        client, user.headers, name="Docs", description="all docs", tags=["a", "b"]
    )
    assert project["owner_id"] == user.id
    assert project["status"] == "active"
    assert set(project) == {
        "id", "name", "description", "status", "tags", "parent_id", "owner_id",
        "created_at", "updated_at",
    }  # fmt: skip
    url = f"/api/v1/projects/{project['id']}"
    assert (await client.get(url, headers=user.headers)).json()["name"] == "Docs"

    updated = await client.put(url, json={"status": "archived"}, headers=user.headers)
    assert updated.status_code == 200
    assert updated.json()["status"] == "archived"
    assert updated.json()["name"] == "Docs"

    deleted = await client.delete(url, headers=user.headers)
    assert deleted.status_code == 204
    assert (await client.get(url, headers=user.headers)).status_code == 404


async def test_other_users_project_is_404(client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    stranger = await register_user(client)
    project = await create_project(client, owner.headers)
    url = f"/api/v1/projects/{project['id']}"
    for method in ("GET", "PUT", "DELETE"):
        kwargs = {"json": {"name": "x"}} if method == "PUT" else {}
        response = await client.request(method, url, headers=stranger.headers, **kwargs)
        assert response.status_code == 404, method
    listed = await client.get("/api/v1/projects", headers=stranger.headers)
    assert project["id"] not in [p["id"] for p in listed.json()["items"]]


async def test_list_pagination_and_filters(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    for i in range(5):
        await create_project(
            client, user.headers, name=f"p{i}", tags=["even"] if i % 2 == 0 else ["odd"]
        )
    await create_project(client, user.headers, name="old", status="archived")
    page = await client.get("/api/v1/projects?skip=1&limit=2", headers=user.headers)
    body = page.json()
    assert body["total"] == 6
    assert (body["skip"], body["limit"]) == (1, 2)
    assert len(body["items"]) == 2
    even = await client.get("/api/v1/projects?tag=even", headers=user.headers)
    assert even.json()["total"] == 3
    archived = await client.get("/api/v1/projects?status=archived", headers=user.headers)
    assert [p["name"] for p in archived.json()["items"]] == ["old"]
    bad = await client.get("/api/v1/projects?limit=0", headers=user.headers)
    assert bad.status_code == 422


async def test_parent_hierarchy_and_cycles(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    root = await create_project(client, user.headers, name="root")
    child = await create_project(client, user.headers, name="child", parent_id=root["id"])
    grandchild = await create_project(client, user.headers, name="gc", parent_id=child["id"])

    children = await client.get(f"/api/v1/projects?parent_id={root['id']}", headers=user.headers)
    assert [p["id"] for p in children.json()["items"]] == [child["id"]]

    cycle = await client.put(
        f"/api/v1/projects/{root['id']}", json={"parent_id": grandchild["id"]}, headers=user.headers
    )
    assert cycle.status_code == 422
    self_parent = await client.put(
        f"/api/v1/projects/{root['id']}", json={"parent_id": root["id"]}, headers=user.headers
    )
    assert self_parent.status_code == 422

    blocked = await client.delete(f"/api/v1/projects/{root['id']}", headers=user.headers)
    assert blocked.status_code == 409
    cascade = await client.delete(
        f"/api/v1/projects/{root['id']}?cascade=true", headers=user.headers
    )
    assert cascade.status_code == 204
    gone = await client.get(f"/api/v1/projects/{grandchild['id']}", headers=user.headers)
    assert gone.status_code == 404


async def test_unknown_parent_is_404(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    response = await client.post(
        "/api/v1/projects", json={"name": "x", "parent_id": str(uuid.uuid4())}, headers=user.headers
    )
    assert response.status_code == 404


async def test_members_roles(client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    viewer = await register_user(client)
    project = await create_project(client, owner.headers)
    url = f"/api/v1/projects/{project['id']}"

    added = await client.put(
        f"{url}/members/{viewer.id}", json={"role": "viewer"}, headers=owner.headers
    )
    assert added.status_code == 200
    assert added.json()["role"] == "viewer"
    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    # The list says each caller's own role, so a client offers only what the caller may do.
    for user, role in ((owner, "owner"), (viewer, "viewer")):
        listed = await client.get("/api/v1/projects", headers=user.headers)
        (mine,) = [p for p in listed.json()["items"] if p["id"] == project["id"]]
        assert mine["role"] == role
    edit = await client.put(url, json={"name": "renamed"}, headers=viewer.headers)
    assert edit.status_code == 403
    manage = await client.put(
        f"{url}/members/{viewer.id}", json={"role": "owner"}, headers=viewer.headers
    )
    assert manage.status_code == 403

    last_owner = await client.delete(f"{url}/members/{owner.id}", headers=owner.headers)
    assert last_owner.status_code == 409
    removed = await client.delete(f"{url}/members/{viewer.id}", headers=owner.headers)
    assert removed.status_code == 204
    assert (await client.get(url, headers=viewer.headers)).status_code == 404
