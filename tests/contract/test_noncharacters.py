"""NUL and other non-characters (issue 14, finding 4): every way a string gets in answers 422
naming the field, before anything reaches PostgreSQL (they were 500s with a traceback)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from lorebase.text import has_forbidden, strip_forbidden
from tests.factories import TestUser, create_project, register_user
from tests.integration.test_mcp_http import mcp_session, problem, serving

BAD = ["\x00", "\ufffe", "\ufdd0", "\U0010ffff"]
NUL = "\x00"


@pytest.fixture(scope="module")
async def http(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="module")
async def owner(http: httpx.AsyncClient) -> TestUser:
    return await register_user(http)


@pytest.fixture(scope="module")
async def project(http: httpx.AsyncClient, owner: TestUser) -> dict[str, Any]:
    return await create_project(http, owner.headers)


def _refused(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert field in body["detail"], body
    assert "NUL" in body["detail"]
    assert any(error["field"] == field for error in body["errors"]), body


@pytest.mark.parametrize("char", BAD, ids=["nul", "fffe", "fdd0", "10ffff"])
@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        ("/api/v1/auth/register", "username", {"username": "u{X}", "password": "p" * 12}),
        ("/api/v1/auth/register", "password", {"username": "nul_user", "password": "pw{X}" * 4}),
        (
            "/api/v1/auth/register",
            "email",
            {"username": "e_user", "password": "p" * 12, "email": "a{X}@b.co"},
        ),
        ("/api/v1/auth/refresh", "refresh_token", {"refresh_token": "t{X}"}),
    ],
)
async def test_anonymous_json_routes(
    http: httpx.AsyncClient, char: str, path: str, field: str, body: dict[str, Any]
) -> None:
    filled = {key: value.replace("{X}", char) for key, value in body.items()}
    _refused(await http.post(path, json=filled), field)


@pytest.mark.parametrize("field", ["username", "password"])
async def test_token_form_fields(http: httpx.AsyncClient, field: str) -> None:
    form = {"username": "someone", "password": "a password"}
    form[field] += NUL
    _refused(await http.post("/api/v1/auth/token", data=form), field)


def _authenticated_cases() -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        ("POST", "/api/v1/projects", "name", {"name": "p{X}"}),
        ("POST", "/api/v1/projects", "description", {"name": "p", "description": "d{X}"}),
        ("POST", "/api/v1/projects", "tags.0", {"name": "p", "tags": ["t{X}"]}),
        ("PUT", "/api/v1/projects/{P}", "name", {"name": "q{X}"}),
        ("POST", "/api/v1/rag/query", "query", {"project_id": "{P}", "query": "x{X}"}),
        (
            "POST",
            "/api/v1/rag/query",
            "filters.tags.0",
            {"project_id": "{P}", "query": "x", "filters": {"tags": ["t{X}"]}},
        ),
        (
            "POST",
            "/api/v1/knowledge/text",
            "text",
            {"project_id": "{P}", "name": "n", "text": "a{X}b"},
        ),
        (
            "POST",
            "/api/v1/knowledge/text",
            "name",
            {"project_id": "{P}", "name": "n{X}", "text": "t"},
        ),
        ("POST", "/api/v1/knowledge/crawl", "url", {"project_id": "{P}", "url": "https://a{X}"}),
        (
            "POST",
            "/api/v1/knowledge/git",
            "ref",
            {"project_id": "{P}", "url": "https://example.com/r.git", "ref": "m{X}"},
        ),
        (
            "POST",
            "/api/v1/documents",
            "content",
            {"project_id": "{P}", "name": "d", "content": "c{X}"},
        ),
        ("POST", "/api/v1/tasks", "title", {"project_id": "{P}", "title": "t{X}"}),
        ("POST", "/api/v1/api-keys", "name", {"name": "k{X}", "scopes": ["read"]}),
    ]


def _fill(value: Any, char: str, project_id: str) -> Any:
    if isinstance(value, str):
        return value.replace("{X}", char).replace("{P}", project_id)
    if isinstance(value, list):
        return [_fill(item, char, project_id) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, char, project_id) for key, item in value.items()}
    return value


@pytest.mark.parametrize("char", ["\x00", "\uffff"], ids=["nul", "ffff"])
@pytest.mark.parametrize(
    ("method", "path", "field", "body"),
    _authenticated_cases(),
    ids=[f"{c[0]} {c[1]} {c[2]}" for c in _authenticated_cases()],
)
async def test_authenticated_json_routes(
    http: httpx.AsyncClient,
    owner: TestUser,
    project: dict[str, Any],
    char: str,
    method: str,
    path: str,
    field: str,
    body: dict[str, Any],
) -> None:
    response = await http.request(
        method,
        path.replace("{P}", project["id"]),
        json=_fill(body, char, project["id"]),
        headers=owner.headers,
    )
    _refused(response, field)


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/api/v1/documents", "tag"),
        ("/api/v1/tasks", "status"),
        ("/api/v1/projects", "q"),
        ("/api/v1/jobs", "status"),
    ],
)
async def test_query_parameters(
    http: httpx.AsyncClient, owner: TestUser, project: dict[str, Any], path: str, param: str
) -> None:
    params = {"project_id": project["id"], param: "x" + NUL}
    _refused(await http.get(path, params=params, headers=owner.headers), param)


async def test_upload_tags_and_filenames(
    http: httpx.AsyncClient, owner: TestUser, project: dict[str, Any]
) -> None:
    refused = await http.post(
        "/api/v1/knowledge/upload",
        headers=owner.headers,
        data={"project_id": project["id"], "tags": "a" + NUL},
        files={"file": ("notes.md", b"# Notes\n\nbody")},
    )
    _refused(refused, "tags")
    renamed = await http.post(
        "/api/v1/knowledge/upload",
        headers=owner.headers,
        data={"project_id": project["id"]},
        files={"file": ("no" + NUL + "tes.md", b"# Other notes\n\nanother body")},
    )
    assert renamed.status_code == 202, renamed.text
    assert not has_forbidden(renamed.json()["name"])


async def test_mcp_tool_arguments(ctx: Any, http: httpx.AsyncClient, owner: TestUser) -> None:
    async with serving(ctx) as base_url, mcp_session(base_url, owner.headers) as session:
        refused = problem(
            await session.call_tool("create_project", {"name": "m" + NUL + uuid.uuid4().hex})
        )
        assert refused["status"] == 422
        assert "name" in refused["detail"]
        query = problem(
            await session.call_tool(
                "query_knowledge", {"project_id": str(uuid.uuid4()), "query_text": "a" + NUL}
            )
        )
        assert query["status"] == 422


def test_strip_forbidden_keeps_ordinary_text() -> None:
    assert strip_forbidden("a\x00b\ufffec\U0001fffe d é 😀") == "abc d é 😀"
