from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.factories import TestUser, create_project, register_user

TASKS = "/api/v1/tasks"


async def _task(
    client: httpx.AsyncClient, user: TestUser, project_id: str, **fields: Any
) -> dict[str, Any]:
    body = {"project_id": project_id, "title": f"task-{uuid.uuid4().hex[:6]}", **fields}
    response = await client.post(TASKS, json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_task_crud_and_shape(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    created = await _task(
        client,
        user,
        project["id"],
        title="Write docs",
        description="the README",
        priority="high",
        assignee="agent-7",
    )
    assert set(created) == {
        "id", "project_id", "title", "description", "status", "priority", "assignee",
        "dependencies", "created_by", "created_at", "updated_at",
    }  # fmt: skip
    assert created["status"] == "todo"
    assert created["priority"] == "high"
    assert created["dependencies"] == []
    assert created["created_by"] == user.id

    url = f"{TASKS}/{created['id']}"
    fetched = await client.get(url, headers=user.headers)
    assert fetched.json() == created

    updated = await client.put(
        url, json={"status": "in_progress", "assignee": None}, headers=user.headers
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["status"] == "in_progress"
    assert body["assignee"] is None
    assert body["title"] == "Write docs"  # untouched fields stay
    assert body["updated_at"] > created["updated_at"]

    assert (await client.delete(url, headers=user.headers)).status_code == 204
    assert (await client.get(url, headers=user.headers)).status_code == 404
    assert (await client.delete(url, headers=user.headers)).status_code == 404


async def test_invalid_bodies_are_422(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    for bad in (
        {"project_id": project["id"], "title": ""},
        {"project_id": project["id"], "title": "x", "status": "finished"},
        {"project_id": project["id"], "title": "x", "priority": "urgent"},
        {"project_id": project["id"], "title": "x", "colour": "red"},
        {"title": "x"},
    ):
        response = await client.post(TASKS, json=bad, headers=user.headers)
        assert response.status_code == 422, bad
    task = await _task(client, user, project["id"])
    for field in ("title", "status", "priority", "dependencies"):
        response = await client.put(
            f"{TASKS}/{task['id']}", json={field: None}, headers=user.headers
        )
        assert response.status_code == 422, field
        assert response.json()["errors"][0]["field"] == field


async def test_list_filters_and_pagination(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    other = await create_project(client, user.headers)
    await _task(client, user, other["id"])  # must not show up
    made = []
    for i in range(5):
        made.append(
            await _task(
                client,
                user,
                project["id"],
                title=f"t{i}",
                status="blocked" if i % 2 else "todo",
                assignee="ann" if i < 2 else "bob",
                priority="low" if i == 4 else "medium",
            )
        )
    listing = await client.get(
        TASKS, params={"project_id": project["id"], "skip": 1, "limit": 2}, headers=user.headers
    )
    body = listing.json()
    assert body["total"] == 5
    assert (body["skip"], body["limit"]) == (1, 2)
    assert [t["title"] for t in body["items"]] == ["t1", "t2"]  # oldest first

    blocked = await client.get(
        TASKS, params={"project_id": project["id"], "status": "blocked"}, headers=user.headers
    )
    assert [t["title"] for t in blocked.json()["items"]] == ["t1", "t3"]
    ann = await client.get(
        TASKS, params={"project_id": project["id"], "assignee": "ann"}, headers=user.headers
    )
    assert [t["title"] for t in ann.json()["items"]] == ["t0", "t1"]
    both = await client.get(
        TASKS,
        params={"project_id": project["id"], "assignee": "bob", "status": "todo"},
        headers=user.headers,
    )
    assert [t["title"] for t in both.json()["items"]] == ["t2", "t4"]
    low = await client.get(
        TASKS, params={"project_id": project["id"], "priority": "low"}, headers=user.headers
    )
    assert [t["title"] for t in low.json()["items"]] == ["t4"]
    past_end = await client.get(
        TASKS, params={"project_id": project["id"], "skip": 10}, headers=user.headers
    )
    assert past_end.json()["items"] == []
    assert past_end.json()["total"] == 5

    assert (await client.get(TASKS, headers=user.headers)).status_code == 422  # project_id needed
    bad_status = await client.get(
        TASKS, params={"project_id": project["id"], "status": "nope"}, headers=user.headers
    )
    assert bad_status.status_code == 422


async def test_dependencies_must_be_in_the_same_project(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    other = await create_project(client, user.headers)
    foreign = await _task(client, user, other["id"])
    unknown = str(uuid.uuid4())
    for dep in (foreign["id"], unknown):
        response = await client.post(
            TASKS,
            json={"project_id": project["id"], "title": "x", "dependencies": [dep]},
            headers=user.headers,
        )
        assert response.status_code == 422, dep
        problem = response.json()
        assert dep in problem["detail"]
        assert problem["errors"][0]["field"] == "dependencies"
    # Nothing half-written: the failed creations left no task behind.
    listing = await client.get(TASKS, params={"project_id": project["id"]}, headers=user.headers)
    assert listing.json()["total"] == 0

    local = await _task(client, user, project["id"])
    task = await _task(client, user, project["id"], dependencies=[local["id"], local["id"]])
    assert task["dependencies"] == [local["id"]]  # duplicates collapse
    moved = await client.put(
        f"{TASKS}/{task['id']}", json={"dependencies": [foreign["id"]]}, headers=user.headers
    )
    assert moved.status_code == 422
    kept = await client.get(f"{TASKS}/{task['id']}", headers=user.headers)
    assert kept.json()["dependencies"] == [local["id"]]


async def test_cycles_are_422_naming_the_cycle(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    a = await _task(client, user, project["id"], title="Alpha")
    b = await _task(client, user, project["id"], title="Beta", dependencies=[a["id"]])
    c = await _task(client, user, project["id"], title="Gamma", dependencies=[b["id"]])

    direct = await client.put(
        f"{TASKS}/{a['id']}", json={"dependencies": [b["id"]]}, headers=user.headers
    )
    assert direct.status_code == 422
    detail = direct.json()["detail"]
    assert f"'Alpha' ({a['id']}) -> 'Beta' ({b['id']}) -> 'Alpha' ({a['id']})" in detail
    assert direct.json()["errors"][0]["cycle"] == [a["id"], b["id"], a["id"]]

    longer = await client.put(
        f"{TASKS}/{a['id']}", json={"dependencies": [c["id"]]}, headers=user.headers
    )
    assert longer.status_code == 422
    assert longer.json()["errors"][0]["cycle"] == [a["id"], c["id"], b["id"], a["id"]]
    assert "'Alpha'" in longer.json()["detail"]
    assert "'Gamma'" in longer.json()["detail"]

    itself = await client.put(
        f"{TASKS}/{a['id']}", json={"dependencies": [a["id"]]}, headers=user.headers
    )
    assert itself.status_code == 422
    assert itself.json()["errors"][0]["cycle"] == [a["id"], a["id"]]

    # A diamond is not a cycle: D depends on B and C, which both lead to A.
    d = await _task(client, user, project["id"], dependencies=[b["id"], c["id"]])
    assert d["dependencies"] == [b["id"], c["id"]]
    # Re-pointing C at A directly (still acyclic) is fine, and the old edge is replaced.
    repointed = await client.put(
        f"{TASKS}/{c['id']}", json={"dependencies": [a["id"]]}, headers=user.headers
    )
    assert repointed.status_code == 200
    assert repointed.json()["dependencies"] == [a["id"]]
    assert (await client.get(f"{TASKS}/{a['id']}", headers=user.headers)).json()[
        "dependencies"
    ] == []


async def test_done_requires_finished_dependencies(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    first = await _task(client, user, project["id"], title="First")
    second = await _task(client, user, project["id"], title="Second", status="in_progress")
    final = await _task(
        client, user, project["id"], title="Final", dependencies=[first["id"], second["id"]]
    )
    url = f"{TASKS}/{final['id']}"

    refused = await client.put(url, json={"status": "done"}, headers=user.headers)
    assert refused.status_code == 409
    problem = refused.json()
    assert {t["id"] for t in problem["blocking_tasks"]} == {first["id"], second["id"]}
    assert "'First'" in problem["detail"]
    assert "'Second'" in problem["detail"]
    assert (await client.get(url, headers=user.headers)).json()["status"] == "todo"

    await client.put(f"{TASKS}/{first['id']}", json={"status": "done"}, headers=user.headers)
    still = await client.put(url, json={"status": "done"}, headers=user.headers)
    assert still.status_code == 409
    assert [t["id"] for t in still.json()["blocking_tasks"]] == [second["id"]]

    await client.put(f"{TASKS}/{second['id']}", json={"status": "done"}, headers=user.headers)
    ok = await client.put(url, json={"status": "done"}, headers=user.headers)
    assert ok.status_code == 200
    assert ok.json()["status"] == "done"

    # Created done with an unfinished dependency, or a done task gaining one: also refused.
    open_task = await _task(client, user, project["id"])
    born_done = await client.post(
        TASKS,
        json={
            "project_id": project["id"],
            "title": "x",
            "status": "done",
            "dependencies": [open_task["id"]],
        },
        headers=user.headers,
    )
    assert born_done.status_code == 409
    gains = await client.put(url, json={"dependencies": [open_task["id"]]}, headers=user.headers)
    assert gains.status_code == 409
    # Moving to done while swapping in finished dependencies in the same request works.
    swap = await client.put(
        f"{TASKS}/{open_task['id']}",
        json={"status": "done", "dependencies": [first["id"]]},
        headers=user.headers,
    )
    assert swap.status_code == 200


async def test_deleting_a_dependency_unblocks(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    dep = await _task(client, user, project["id"])
    task = await _task(client, user, project["id"], dependencies=[dep["id"]])
    assert (await client.delete(f"{TASKS}/{dep['id']}", headers=user.headers)).status_code == 204
    after = await client.get(f"{TASKS}/{task['id']}", headers=user.headers)
    assert after.json()["dependencies"] == []
    done = await client.put(f"{TASKS}/{task['id']}", json={"status": "done"}, headers=user.headers)
    assert done.status_code == 200


async def test_concurrent_edges_cannot_close_a_cycle(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    for _ in range(3):
        a = await _task(client, user, project["id"])
        b = await _task(client, user, project["id"])
        results = await asyncio.gather(
            client.put(
                f"{TASKS}/{a['id']}", json={"dependencies": [b["id"]]}, headers=user.headers
            ),
            client.put(
                f"{TASKS}/{b['id']}", json={"dependencies": [a["id"]]}, headers=user.headers
            ),
        )
        assert sorted(r.status_code for r in results) == [200, 422]


async def test_permissions_follow_the_project(client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    viewer = await register_user(client)
    stranger = await register_user(client)
    project = await create_project(client, owner.headers)
    await client.put(
        f"/api/v1/projects/{project['id']}/members/{viewer.id}",
        json={"role": "viewer"},
        headers=owner.headers,
    )
    task = await _task(client, owner, project["id"])
    url = f"{TASKS}/{task['id']}"

    assert (await client.get(url, headers=viewer.headers)).status_code == 200
    listed = await client.get(TASKS, params={"project_id": project["id"]}, headers=viewer.headers)
    assert listed.json()["total"] == 1
    edit = await client.put(url, json={"title": "mine"}, headers=viewer.headers)
    assert edit.status_code == 403
    create = await client.post(
        TASKS, json={"project_id": project["id"], "title": "x"}, headers=viewer.headers
    )
    assert create.status_code == 403
    assert (await client.delete(url, headers=viewer.headers)).status_code == 403

    for method in ("GET", "PUT", "DELETE"):
        kwargs = {"json": {"title": "x"}} if method == "PUT" else {}
        response = await client.request(method, url, headers=stranger.headers, **kwargs)
        assert response.status_code == 404, method
        # Indistinguishable from a task that does not exist; the project id does not leak.
        assert project["id"] not in response.text
        assert response.json()["detail"] == f"task {task['id']} not found"
    listed = await client.get(TASKS, params={"project_id": project["id"]}, headers=stranger.headers)
    assert listed.status_code == 404
    stranger_create = await client.post(
        TASKS, json={"project_id": project["id"], "title": "x"}, headers=stranger.headers
    )
    assert stranger_create.status_code == 404
    assert (await client.get(url)).status_code == 401
