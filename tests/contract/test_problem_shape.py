"""Pins the RFC 9457 problem+json shape on every error path (issue 2, item 6):
401, 403, 404, 405, 409, 413, 415, 422, 429 and 500.

Every error is `application/problem+json` with `{type, title, status, detail, instance,
request_id}` (plus `errors` for validation), and the response carries `X-Request-ID` equal to the
body's `request_id`. Unknown errors are an opaque 500 that leaks no exception text.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from lorebase.context import AppContext
from lorebase.errors import PROBLEM_BASE
from lorebase.main import create_app
from tests.factories import create_project, register_user

REQUIRED = {"type", "title", "status", "detail", "instance", "request_id"}


def assert_problem(
    response: httpx.Response, status: int, *, slug: str, validation: bool = False
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert set(body) >= REQUIRED, body
    assert body["status"] == status
    assert body["type"] == PROBLEM_BASE + slug
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"]
    assert response.headers["x-request-id"] == body["request_id"]
    if validation:
        assert isinstance(body["errors"], list)
        assert body["errors"]
        for error in body["errors"]:
            assert {"field", "msg"} <= set(error), error
    else:
        # Other problems may name the offending field too, in the same shape.
        for error in body.get("errors") or []:
            assert "field" in error, error
    return body


@asynccontextmanager
async def _client_for(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_422_validation(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"username": "ok_name", "password": "x"}
    )
    body = assert_problem(response, 422, slug="validation-error", validation=True)
    assert body["errors"][0]["field"] == "password"
    assert "password" in body["detail"]


async def test_422_from_the_domain(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    response = await client.post(
        "/api/v1/tasks",
        json={"project_id": project["id"], "title": "t", "dependencies": [str(uuid.uuid4())]},
        headers=user.headers,
    )
    body = assert_problem(response, 422, slug="validation-error", validation=True)
    assert body["errors"][0]["field"] == "dependencies"


async def test_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/me")
    assert_problem(response, 401, slug="unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    bad = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer nonsense"})
    assert_problem(bad, 401, slug="unauthorized")


async def test_403(client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    viewer = await register_user(client)
    project = await create_project(client, owner.headers)
    url = f"/api/v1/projects/{project['id']}"
    await client.put(f"{url}/members/{viewer.id}", json={"role": "viewer"}, headers=owner.headers)
    response = await client.put(url, json={"name": "mine"}, headers=viewer.headers)
    assert_problem(response, 403, slug="forbidden")


async def test_404_resource_and_route(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    missing = await client.get(f"/api/v1/projects/{uuid.uuid4()}", headers=user.headers)
    assert_problem(missing, 404, slug="not-found")
    no_route = await client.get("/api/v1/no-such-thing")
    assert_problem(no_route, 404, slug="not-found")


async def test_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/auth/me")
    assert_problem(response, 405, slug="method-not-allowed")
    assert "GET" in response.headers["allow"]


async def test_409(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    response = await client.post(
        "/api/v1/auth/register", json={"username": user.username, "password": "long enough pw"}
    )
    assert_problem(response, 409, slug="conflict")


async def test_413_upload_too_large(ctx: AppContext) -> None:
    settings = ctx.settings.model_copy(update={"max_upload_bytes": 1024})
    app = create_app(context=dataclasses.replace(ctx, settings=settings))
    async with _client_for(app) as client:
        user = await register_user(client)
        project = await create_project(client, user.headers)
        response = await client.post(
            "/api/v1/knowledge/upload",
            data={"project_id": project["id"]},
            files={"file": ("big.md", b"# big\n\n" + b"word " * 1000)},
            headers=user.headers,
        )
    body = assert_problem(response, 413, slug="payload-too-large")
    assert "big.md" in body["detail"]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("tool.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" * 8),
        ("notes.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))),
    ],
    ids=["unsupported", "lying"],
)
async def test_415_upload_type(client: httpx.AsyncClient, name: str, content: bytes) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    response = await client.post(
        "/api/v1/knowledge/upload",
        data={"project_id": project["id"]},
        files={"file": (name, content)},
        headers=user.headers,
    )
    assert_problem(response, 415, slug="unsupported-media-type")


async def test_429(ctx: AppContext) -> None:
    settings = ctx.settings.model_copy(update={"rate_limit_auth": "1/minute"})
    app = create_app(context=dataclasses.replace(ctx, settings=settings))
    async with _client_for(app) as client:
        form = {"username": f"shape_{uuid.uuid4().hex[:8]}"}  # 422s still spend tokens
        await client.post("/api/v1/auth/token", data=form)
        response = await client.post("/api/v1/auth/token", data=form)
    assert_problem(response, 429, slug="rate-limited")
    assert int(response.headers["retry-after"]) >= 1


async def test_500_is_opaque(ctx: AppContext) -> None:
    app = create_app(context=ctx)
    secret = "internal detail db-password=hunter2"

    @app.get("/api/v1/explode")
    async def explode() -> None:
        raise RuntimeError(secret)

    async with _client_for(app) as client:
        response = await client.get("/api/v1/explode")
    body = assert_problem(response, 500, slug="internal-error")
    assert secret not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert "request id" in body["detail"]  # tells the user what to quote instead


async def test_500_under_openai_is_opaque_in_openai_shape(ctx: AppContext) -> None:
    """The OpenAI SDKs parse `{"error": {...}}`; an unhandled error there is no exception."""
    app = create_app(context=ctx)

    @app.get("/openai/v1/explode")
    async def explode() -> None:
        raise RuntimeError("internal detail db-password=hunter2")

    async with _client_for(app) as client:
        response = await client.get("/openai/v1/explode")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert error["code"] == "internal_error"
    assert "request id" in error["message"]
    assert "hunter2" not in response.text
    assert response.headers["x-request-id"]


async def test_incoming_request_id_is_honoured(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/auth/me", headers={"X-Request-ID": "trace-abc.123"})
    body = assert_problem(response, 401, slug="unauthorized")
    assert body["request_id"] == "trace-abc.123"
    hostile = await client.get("/api/v1/auth/me", headers={"X-Request-ID": "bad id <script>"})
    assert hostile.headers["x-request-id"] != "bad id <script>"
    assert hostile.json()["request_id"] == hostile.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/auth/me"])
async def test_every_response_has_a_request_id(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.headers["x-request-id"]
