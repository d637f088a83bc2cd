"""Readable JSON errors, `Allow` on 405, and error responses in the OpenAPI document."""

from __future__ import annotations

import httpx

from tests.factories import register_user


async def test_malformed_json_says_what_and_where(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    response = await client.post(
        "/api/v1/projects",
        content=b'{"name": "x",,}',
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith("the body is not valid JSON: ")
    assert "at character" in detail
    assert "invalid request: 8" not in detail


async def test_405_lists_every_allowed_method(client: httpx.AsyncClient) -> None:
    response = await client.patch("/api/v1/projects")
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed


async def test_openapi_documents_problem_responses(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/openapi.json")).json()
    create = spec["paths"]["/api/v1/projects"]["post"]["responses"]
    assert "application/problem+json" in create["422"]["content"]
    assert "401" in create
    assert "application/problem+json" in create["401"]["content"]
