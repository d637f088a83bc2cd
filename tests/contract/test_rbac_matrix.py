"""Every endpoint x every role: who gets 2xx, 403 or 404 (issue 6, RBAC).

Viewer: read and query. Editor: also ingest, documents, tasks. Owner: also members and delete.
A non-member gets 404 (never 403: ids don't leak); a global admin may do everything; an API key
narrows its user by scope (a read key is a viewer at most) and by project (a key bound to
another project sees nothing here).

Adding an endpoint is adding one `Endpoint` row to ENDPOINTS: its method, path template, the
permission it needs, its success status, the request body/params, and (for destructive or
one-shot calls) a `prepare` that makes a fresh target for each role's attempt.
"""

from __future__ import annotations

import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from lorebase.auth.permissions import Permission
from lorebase.context import AppContext
from lorebase.main import create_app
from tests.factories import TestUser, create_project, register_user

ROLES = ("owner", "editor", "viewer", "non_member", "admin", "read_key", "other_project_key")

# Expected status for a role, by the permission an endpoint needs; None means "the row's 2xx".
EXPECTED: dict[str, dict[Permission, int | None]] = {
    "owner": {Permission.READ: None, Permission.WRITE: None, Permission.MANAGE: None},
    "editor": {Permission.READ: None, Permission.WRITE: None, Permission.MANAGE: 403},
    "viewer": {Permission.READ: None, Permission.WRITE: 403, Permission.MANAGE: 403},
    "non_member": {Permission.READ: 404, Permission.WRITE: 404, Permission.MANAGE: 404},
    "admin": {Permission.READ: None, Permission.WRITE: None, Permission.MANAGE: None},
    "read_key": {Permission.READ: None, Permission.WRITE: 403, Permission.MANAGE: 403},
    "other_project_key": {Permission.READ: 404, Permission.WRITE: 404, Permission.MANAGE: 404},
}


@dataclass
class World:
    """One project with an owner, an editor and a viewer, plus everyone else in ROLES."""

    client: httpx.AsyncClient
    users: dict[str, TestUser]
    headers: dict[str, dict[str, str]]
    project_id: str
    spare_user: TestUser  # the target of membership changes
    ids: dict[str, str] = field(default_factory=dict)  # long-lived targets of reads and edits

    async def fresh_project(self) -> str:
        """A project with the same memberships as the main one (for DELETE)."""
        owner = self.users["owner"]
        project = await create_project(self.client, owner.headers)
        for role in ("editor", "viewer"):
            response = await self.client.put(
                f"/api/v1/projects/{project['id']}/members/{self.users[role].id}",
                json={"role": role},
                headers=owner.headers,
            )
            assert response.status_code == 200, response.text
        return str(project["id"])

    async def fresh_task(self) -> str:
        response = await self.client.post(
            "/api/v1/tasks",
            json={"project_id": self.project_id, "title": "to delete"},
            headers=self.users["owner"].headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def fresh_document(self) -> str:
        response = await self.client.post(
            "/api/v1/documents",
            json={"project_id": self.project_id, "name": f"doc-{uuid.uuid4().hex[:8]}.md"},
            headers=self.users["owner"].headers,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def fresh_job(self) -> str:
        """A queued job (no worker runs in this module's app, so it stays cancellable)."""
        response = await self.client.post(
            "/api/v1/knowledge/text",
            json={"project_id": self.project_id, "name": "j.md", "text": uuid.uuid4().hex},
            headers=self.users["owner"].headers,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    async def fresh_source(self) -> str:
        """A crawl source whose first sync was cancelled (idle, so a sync may be asked for)."""
        owner = self.users["owner"].headers
        url = f"http://127.0.0.1:{_closed_port()}/{_unique()}"
        response = await self.client.post(
            "/api/v1/knowledge/crawl",
            json={"project_id": self.project_id, "url": url},
            headers=owner,
        )
        assert response.status_code == 202, response.text
        cancel = await self.client.post(
            f"/api/v1/jobs/{response.json()['job_id']}/cancel", headers=owner
        )
        assert cancel.status_code == 200, cancel.text
        sources = await self.client.get(
            f"/api/v1/projects/{self.project_id}/sources", params={"limit": 500}, headers=owner
        )
        (source,) = [s for s in sources.json()["items"] if s["uri"] == url]
        return str(source["id"])

    async def spare_membership(self) -> None:
        response = await self.client.put(
            f"/api/v1/projects/{self.project_id}/members/{self.spare_user.id}",
            json={"role": "viewer"},
            headers=self.users["owner"].headers,
        )
        assert response.status_code == 200, response.text


Prepare = Callable[[World], Awaitable[dict[str, str]]]
Request = Callable[[dict[str, str]], dict[str, Any]]  # path values -> httpx request kwargs


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # a template over {project_id}, {task_id}, ... and what `prepare` returns
    needs: Permission
    ok: int
    request: Request | None = None  # json=, params=, data=, files= for httpx
    prepare: Prepare | None = None
    overrides: dict[str, int] = field(default_factory=dict)  # role -> status, where it differs

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def expected(self, role: str) -> int:
        if role in self.overrides:
            return self.overrides[role]
        status = EXPECTED[role][self.needs]
        return self.ok if status is None else status


async def _fresh_project(world: World) -> dict[str, str]:
    return {"project_id": await world.fresh_project()}


async def _fresh_task(world: World) -> dict[str, str]:
    return {"task_id": await world.fresh_task()}


async def _fresh_source(world: World) -> dict[str, str]:
    return {"source_id": await world.fresh_source()}


async def _spare_member(world: World) -> dict[str, str]:
    await world.spare_membership()
    return {}


async def _fresh_document(world: World) -> dict[str, str]:
    return {"document_id": await world.fresh_document()}


async def _fresh_job(world: World) -> dict[str, str]:
    return {"job_id": await world.fresh_job()}


def _unique() -> str:
    return uuid.uuid4().hex[:10]


# API keys can never manage keys, whatever their scope or project.
KEYS_CANNOT_MINT = {"read_key": 403, "other_project_key": 403}

ENDPOINTS: list[Endpoint] = [
    # --- projects -----------------------------------------------------------------------
    Endpoint("GET", "/projects/{project_id}", Permission.READ, 200),
    Endpoint(
        "PUT",
        "/projects/{project_id}",
        Permission.WRITE,
        200,
        request=lambda p: {"json": {"description": f"edited {_unique()}"}},
    ),
    Endpoint(
        "POST",
        "/projects",
        Permission.WRITE,
        201,
        request=lambda p: {"json": {"name": "child", "parent_id": p["project_id"]}},
        # A project-bound key may not create projects at all (checked before the parent).
        overrides={"other_project_key": 403},
    ),
    Endpoint("DELETE", "/projects/{project_id}", Permission.MANAGE, 204, prepare=_fresh_project),
    # --- members ------------------------------------------------------------------------
    Endpoint(
        "PUT",
        "/projects/{project_id}/members/{user_id}",
        Permission.MANAGE,
        200,
        request=lambda p: {"json": {"role": "viewer"}},
    ),
    Endpoint(
        "DELETE",
        "/projects/{project_id}/members/{user_id}",
        Permission.MANAGE,
        204,
        prepare=_spare_member,
    ),
    # --- tasks --------------------------------------------------------------------------
    Endpoint(
        "POST",
        "/tasks",
        Permission.WRITE,
        201,
        request=lambda p: {"json": {"project_id": p["project_id"], "title": "new"}},
    ),
    Endpoint(
        "GET",
        "/tasks",
        Permission.READ,
        200,
        request=lambda p: {"params": {"project_id": p["project_id"]}},
    ),
    Endpoint("GET", "/tasks/{task_id}", Permission.READ, 200),
    Endpoint(
        "PUT",
        "/tasks/{task_id}",
        Permission.WRITE,
        200,
        request=lambda p: {"json": {"priority": "high"}},
    ),
    Endpoint("DELETE", "/tasks/{task_id}", Permission.WRITE, 204, prepare=_fresh_task),
    # --- documents ----------------------------------------------------------------------
    Endpoint(
        "POST",
        "/documents",
        Permission.WRITE,
        201,
        request=lambda p: {"json": {"project_id": p["project_id"], "name": f"doc-{_unique()}.md"}},
    ),
    Endpoint(
        "GET",
        "/documents",
        Permission.READ,
        200,
        request=lambda p: {"params": {"project_id": p["project_id"]}},
    ),
    Endpoint("GET", "/documents/{document_id}", Permission.READ, 200),
    Endpoint(
        "PUT",
        "/documents/{document_id}",
        Permission.WRITE,
        200,
        request=lambda p: {"json": {"tags": [f"t{_unique()}"]}},
    ),
    Endpoint("DELETE", "/documents/{document_id}", Permission.WRITE, 204, prepare=_fresh_document),
    Endpoint(
        "POST",
        "/documents/{document_id}/version",
        Permission.WRITE,
        201,
        request=lambda p: {"json": {"content": f"# v\n\n{_unique()}", "bump": "patch"}},
    ),
    Endpoint("GET", "/documents/{document_id}/versions", Permission.READ, 200),
    # --- knowledge (ingestion) ------------------------------------------------------------
    Endpoint(
        "POST",
        "/knowledge/upload",
        Permission.WRITE,
        202,
        request=lambda p: {
            "data": {"project_id": p["project_id"]},
            "files": {"file": (f"{_unique()}.md", f"# Notes\n\n{_unique()}".encode())},
        },
    ),
    Endpoint(
        "POST",
        "/knowledge/text",
        Permission.WRITE,
        202,
        request=lambda p: {
            "json": {"project_id": p["project_id"], "name": "n.md", "text": _unique()}
        },
    ),
    Endpoint(
        "POST",
        "/knowledge/crawl",
        Permission.WRITE,
        202,
        # Loopback on a closed port, allowed for this module's app only: nothing leaves the
        # machine even if a worker ever picked the job up.
        request=lambda p: {
            "json": {"project_id": p["project_id"], "url": f"http://127.0.0.1:{p['port']}/"}
        },
    ),
    Endpoint(
        "POST",
        "/knowledge/git",
        Permission.WRITE,
        202,
        request=lambda p: {
            "json": {
                "project_id": p["project_id"],
                "url": f"http://127.0.0.1:{p['port']}/repo.git",
            }
        },
    ),
    # --- jobs ---------------------------------------------------------------------------
    Endpoint(
        "GET",
        "/jobs",
        Permission.READ,
        200,
        request=lambda p: {"params": {"project_id": p["project_id"]}},
    ),
    Endpoint("GET", "/jobs/{job_id}", Permission.READ, 200),
    Endpoint("POST", "/jobs/{job_id}/cancel", Permission.WRITE, 200, prepare=_fresh_job),
    # --- sources ------------------------------------------------------------------------
    Endpoint("GET", "/projects/{project_id}/sources", Permission.READ, 200),
    Endpoint("GET", "/sources/{source_id}", Permission.READ, 200),
    Endpoint("POST", "/sources/{source_id}/sync", Permission.WRITE, 202, prepare=_fresh_source),
    Endpoint(
        "PUT",
        "/sources/{source_id}",
        Permission.WRITE,
        200,
        request=lambda p: {"json": {"tags": [f"t{_unique()}"]}},
    ),
    Endpoint("DELETE", "/sources/{source_id}", Permission.WRITE, 202, prepare=_fresh_source),
    # --- queries ------------------------------------------------------------------------
    Endpoint(
        "POST",
        "/rag/query",
        Permission.READ,
        200,
        request=lambda p: {"json": {"project_id": p["project_id"], "query_text": "notes"}},
    ),
    # --- api keys bound to the project --------------------------------------------------
    Endpoint(
        "POST",
        "/api-keys",
        Permission.READ,
        201,
        request=lambda p: {
            "json": {"name": "bound", "scopes": ["read"], "project_id": p["project_id"]}
        },
        overrides=KEYS_CANNOT_MINT,
    ),
]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
async def world(ctx: AppContext) -> AsyncIterator[World]:
    # This module's own app: crawl/git targets on loopback are allowed here (and only here).
    settings = ctx.settings.model_copy(update={"crawl_allow_private_networks": ["127.0.0.1/32"]})
    app = create_app(context=dataclasses.replace(ctx, settings=settings))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        users = {
            role: await register_user(client, prefix=role)
            for role in ("owner", "editor", "viewer", "non_member")
        }
        users["admin"] = await register_user(client, admin=True, ctx=ctx, prefix="admin")
        spare = await register_user(client, prefix="spare")
        owner = users["owner"]
        project = await create_project(client, owner.headers, name="matrix")
        elsewhere = await create_project(client, owner.headers, name="elsewhere")

        async def key(**body: Any) -> dict[str, str]:
            response = await client.post(
                "/api/v1/api-keys", json={"name": "k", **body}, headers=owner.headers
            )
            assert response.status_code == 201, response.text
            return {"Authorization": f"Bearer {response.json()['key']}"}

        headers = {role: user.headers for role, user in users.items()}
        headers["read_key"] = await key(scopes=["read"])
        headers["other_project_key"] = await key(
            scopes=["read", "write", "admin"], project_id=elsewhere["id"]
        )
        world = World(
            client=client, users=users, headers=headers, project_id=project["id"], spare_user=spare
        )
        for role in ("editor", "viewer"):
            response = await client.put(
                f"/api/v1/projects/{project['id']}/members/{users[role].id}",
                json={"role": role},
                headers=owner.headers,
            )
            assert response.status_code == 200
        world.ids = {
            "task_id": await world.fresh_task(),
            "document_id": await world.fresh_document(),
            "job_id": await world.fresh_job(),
            "source_id": await world.fresh_source(),
        }
        yield world


async def _call(world: World, endpoint: Endpoint, role: str, values: dict[str, str]) -> Any:
    return await world.client.request(
        endpoint.method,
        "/api/v1" + endpoint.path.format(**values),
        headers=world.headers[role],
        **(endpoint.request(values) if endpoint.request else {}),
    )


def _detail(response: Any, values: dict[str, str]) -> str:
    detail = str(response.json()["detail"])
    for name, value in values.items():
        detail = detail.replace(value, f"{{{name}}}")
    return detail


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
async def test_matrix(world: World, endpoint: Endpoint, role: str) -> None:
    values = {
        "project_id": world.project_id,
        "user_id": world.spare_user.id,
        "port": str(_closed_port()),
        **world.ids,
    }
    if endpoint.prepare is not None:
        values.update(await endpoint.prepare(world))
    response = await _call(world, endpoint, role, values)
    expected = endpoint.expected(role)
    assert response.status_code == expected, (
        f"{endpoint.name} as {role}: expected {expected}, got {response.status_code} "
        f"{response.text[:300]}"
    )
    if expected < 400:
        return
    assert response.headers["content-type"] == "application/problem+json"
    if expected == 404:
        # Indistinguishable from ids that exist nowhere: same status, same words.
        ghosts = {name: str(uuid.uuid4()) for name in ("project_id", *world.ids)}
        ghost = await _call(world, endpoint, role, {**values, **ghosts})
        assert ghost.status_code == 404, ghost.text
        assert _detail(response, values) == _detail(ghost, {**values, **ghosts})


async def test_matrix_covers_every_role_and_permission() -> None:
    # Guards the table itself: every role states an outcome for every permission level, and
    # 403 only ever goes to someone who can see the project.
    for role in ROLES:
        assert set(EXPECTED[role]) == set(Permission)
    for role in ("non_member", "other_project_key"):
        assert set(EXPECTED[role].values()) == {404}


async def test_lists_show_only_visible_projects(world: World) -> None:
    for role, visible in {
        "owner": True,
        "editor": True,
        "viewer": True,
        "admin": True,
        "read_key": True,
        "non_member": False,
        "other_project_key": False,
    }.items():
        response = await world.client.get(
            "/api/v1/projects", params={"limit": 500}, headers=world.headers[role]
        )
        assert response.status_code == 200, role
        ids = {p["id"] for p in response.json()["items"]}
        assert (world.project_id in ids) is visible, role


async def test_the_jobs_list_without_a_project_shows_only_visible_projects(world: World) -> None:
    for role, visible in {
        "owner": True,
        "viewer": True,
        "admin": True,
        "read_key": True,
        "non_member": False,
        "other_project_key": False,
    }.items():
        response = await world.client.get(
            "/api/v1/jobs", params={"limit": 500}, headers=world.headers[role]
        )
        assert response.status_code == 200, role
        projects = {job["project_id"] for job in response.json()["items"]}
        assert (world.project_id in projects) is visible, role
