"""Cascade deletes go only through children the caller may manage (issue 14, finding 6)."""

from __future__ import annotations

import httpx

from tests.factories import create_project, register_user


async def test_cascade_keeps_a_child_the_owner_cannot_see(client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    editor = await register_user(client)
    parent = await create_project(client, owner.headers)
    added = await client.put(
        f"/api/v1/projects/{parent['id']}/members/{editor.id}",
        json={"role": "editor"},
        headers=owner.headers,
    )
    assert added.status_code == 200, added.text
    child = await create_project(client, editor.headers, parent_id=parent["id"], name="secret-c")
    hidden = await client.get(f"/api/v1/projects/{child['id']}", headers=owner.headers)
    assert hidden.status_code == 404

    plain = await client.delete(f"/api/v1/projects/{parent['id']}", headers=owner.headers)
    assert plain.status_code == 409
    assert "1 child" not in plain.json()["detail"], "no count of children the owner cannot see"
    cascade = await client.delete(
        f"/api/v1/projects/{parent['id']}", params={"cascade": "true"}, headers=owner.headers
    )
    assert cascade.status_code == 409, cascade.text
    detail = cascade.json()["detail"]
    assert child["id"] not in detail
    assert "secret-c" not in detail
    still = await client.get(f"/api/v1/projects/{child['id']}", headers=editor.headers)
    assert still.status_code == 200
    kept = await client.get(f"/api/v1/projects/{parent['id']}", headers=owner.headers)
    assert kept.status_code == 200


async def test_cascade_deletes_children_the_caller_manages(client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    parent = await create_project(client, owner.headers)
    child = await create_project(client, owner.headers, parent_id=parent["id"])
    deleted = await client.delete(
        f"/api/v1/projects/{parent['id']}", params={"cascade": "true"}, headers=owner.headers
    )
    assert deleted.status_code == 204
    gone = await client.get(f"/api/v1/projects/{child['id']}", headers=owner.headers)
    assert gone.status_code == 404
