"""MCP over streamable HTTP at `/mcp`, driven by the official MCP client against the app served
by uvicorn on a loopback port: tools, structured results, roles and refused credentials."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
import uvicorn
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from lorebase.context import AppContext
from lorebase.jobs import run_worker
from lorebase.knowledge.runner import job_handler, worker_options
from lorebase.main import create_app
from tests.factories import create_project, register_user

SPEC_TOOLS = {
    "list_projects",
    "create_project",
    "ingest_text",
    "ingest_url",
    "get_job",
    "list_sources",
    "sync_source",
    "query_knowledge",
    "list_documents",
    "get_document",
    "list_tasks",
    "create_task",
    "update_task",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(ctx: AppContext) -> AsyncIterator[str]:
    """A fresh app over `ctx` (its own MCP session manager) on a real loopback socket."""
    config = uvicorn.Config(
        create_app(context=ctx),
        host="127.0.0.1",
        port=_free_port(),
        log_config=None,
        access_log=False,
        ws="none",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def base_url(ctx: AppContext) -> AsyncIterator[str]:
    async with serving(ctx) as url:
        yield url


@asynccontextmanager
async def mcp_session(
    base_url: str, headers: dict[str, str], statuses: list[int] | None = None
) -> AsyncIterator[ClientSession]:
    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with (
        httpx2.AsyncClient(
            headers=headers, timeout=30.0, event_hooks={"response": [record]}
        ) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def structured(result: CallToolResult) -> dict[str, Any]:
    assert result.structured_content is not None, result.content
    text = result.content[0].text  # type: ignore[union-attr]
    assert json.loads(text) == result.structured_content, "text mirrors the structured content"
    return result.structured_content


async def test_lists_tools_and_creates_project(base_url: str, client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    async with mcp_session(base_url, user.headers) as session:
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == SPEC_TOOLS
        for tool in tools.values():
            assert tool.input_schema["type"] == "object", tool.name
            assert tool.output_schema is not None, f"{tool.name} has no structured output"
            assert tool.description, tool.name
        assert tools["list_projects"].annotations is not None
        assert tools["list_projects"].annotations.read_only_hint is True
        assert set(tools["query_knowledge"].input_schema["required"]) == {
            "project_id",
            "query_text",
        }
        assert tools["create_project"].input_schema["required"] == ["name"]
        assert tools["create_project"].output_schema is not None

        created = await session.call_tool("create_project", {"name": "memory", "tags": ["a"]})
        assert not created.is_error, created.content
        project = structured(created)
        assert project["name"] == "memory"
        assert project["owner_id"] == user.id

        listed = structured(await session.call_tool("list_projects", {}))
        assert [p["id"] for p in listed["items"]] == [project["id"]]
        assert listed["total"] == 1

    rest = await client.get(f"/api/v1/projects/{project['id']}", headers=user.headers)
    assert rest.json() == project, "the tool returns the same JSON as the REST route"


def problem(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.content
    body = structured(result)
    assert set(body) >= {"type", "title", "status", "detail", "instance", "request_id"}
    return body


async def test_tool_errors_carry_problem_details(base_url: str, client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    viewer = await register_user(client)
    stranger = await register_user(client)
    project = await create_project(client, owner.headers)
    added = await client.put(
        f"/api/v1/projects/{project['id']}/members/{viewer.id}",
        json={"role": "viewer"},
        headers=owner.headers,
    )
    assert added.status_code == 200, added.text

    async with mcp_session(base_url, viewer.headers) as session:
        assert (
            structured(await session.call_tool("list_tasks", {"project_id": project["id"]}))[
                "total"
            ]
            == 0
        )
        refused = problem(
            await session.call_tool("create_task", {"project_id": project["id"], "title": "t"})
        )
        assert refused["status"] == 403
        assert refused["title"] == "Forbidden"
        assert refused["instance"] == "/mcp/tools/create_task"

    async with mcp_session(base_url, stranger.headers) as session:
        hidden = problem(await session.call_tool("list_tasks", {"project_id": project["id"]}))
        assert hidden["status"] == 404, "another user's project is 404, never 403"

    async with mcp_session(base_url, owner.headers) as session:
        invalid = problem(await session.call_tool("create_project", {"name": "x", "tags": [""]}))
        assert invalid["status"] == 422
        assert invalid["errors"][0]["field"] == "tags"


async def test_api_key_bound_to_one_project(base_url: str, client: httpx.AsyncClient) -> None:
    owner = await register_user(client)
    mine = await create_project(client, owner.headers)
    other = await create_project(client, owner.headers)
    minted = await client.post(
        "/api/v1/api-keys",
        json={"name": "agent", "scopes": ["write"], "project_id": mine["id"]},
        headers=owner.headers,
    )
    assert minted.status_code == 201, minted.text
    key = minted.json()["key"]

    async with mcp_session(base_url, {"X-API-Key": key}) as session:
        task = structured(
            await session.call_tool("create_task", {"project_id": mine["id"], "title": "ok"})
        )
        assert task["project_id"] == mine["id"]
        elsewhere = problem(
            await session.call_tool("create_task", {"project_id": other["id"], "title": "no"})
        )
        assert elsewhere["status"] == 404
        listed = structured(await session.call_tool("list_projects", {}))
        assert [p["id"] for p in listed["items"]] == [mine["id"]]
        new_project = problem(await session.call_tool("create_project", {"name": "nope"}))
        assert new_project["status"] == 403


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"X-API-Key": "lb_not-a-real-key"},
        {"X-API-Key": "eyJhbGciOiJIUzI1NiJ9.e30.x"},
    ],
    ids=["missing", "bad-jwt", "not-bearer", "unknown-key", "jwt-in-x-api-key"],
)
async def test_bad_credentials_get_401(base_url: str, headers: dict[str, str]) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "0"},
        },
    }
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{base_url}/mcp",
            json=initialize,
            headers={"Accept": "application/json, text/event-stream", **headers},
        )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401
    assert body["instance"] == "/mcp"
    assert body["request_id"] == response.headers["x-request-id"]


async def test_official_client_with_bad_token_is_refused(base_url: str) -> None:
    statuses: list[int] = []
    with pytest.raises(ExceptionGroup) as refused:
        async with mcp_session(base_url, {"Authorization": "Bearer not-a-token"}, statuses):
            pass
    assert [type(exc) for exc in _leaves(refused.value)] == [MCPError], refused.value
    assert statuses == [401]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


async def drain(ctx: AppContext) -> None:
    """Run every queued job, then return: a one-shot worker on the real queue (the app under
    test shares the test context, so its lifespan starts no worker)."""
    options = worker_options(ctx, wait=False, concurrency=2)
    await run_worker(ctx.db, handler=job_handler(ctx), options=options)


async def wait_for_job(
    session: ClientSession, ctx: AppContext, job_id: str, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll `get_job` as an agent would, until the job is finished."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        job = structured(await session.call_tool("get_job", {"job_id": job_id}))
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert asyncio.get_running_loop().time() < deadline, f"job still {job['status']}"
        await drain(ctx)


HANDBOOK = (
    "# On-call\n\nThe on-call rotation changes every Monday at 10:00 UTC. The outgoing "
    "engineer hands over open incidents in the #ops channel.\n\n# Holidays\n\nRequest "
    "holidays at least two weeks ahead in the HR portal."
)


async def test_ingest_then_query_finds_the_text(
    base_url: str, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    owner = await register_user(client)
    viewer = await register_user(client)
    async with mcp_session(base_url, owner.headers) as session:
        project = structured(await session.call_tool("create_project", {"name": "handbook"}))
        accepted = structured(
            await session.call_tool(
                "ingest_text",
                {"project_id": project["id"], "name": "handbook.md", "text": HANDBOOK},
            )
        )
        assert {"document_id", "job_id", "status"} <= set(accepted)
        assert accepted["status"] == "queued"
        job = await wait_for_job(session, ctx, accepted["job_id"])
        assert job["status"] == "succeeded", job["error"]
        assert accepted["document_id"] in job["document_ids"]
        rest_job = await client.get(f"/api/v1/jobs/{job['id']}", headers=owner.headers)
        assert rest_job.json() == job, "get_job returns the same JSON as GET /jobs/{id}"

        answer = structured(
            await session.call_tool(
                "query_knowledge",
                {
                    "project_id": project["id"],
                    "query_text": "when does the on-call rotation change",
                },
            )
        )
        assert answer["total_results"] >= 1
        assert "every Monday at 10:00 UTC" in answer["results"][0]["chunk_text"]
        assert answer["results"][0]["document_id"] == accepted["document_id"]

        documents = structured(
            await session.call_tool("list_documents", {"project_id": project["id"]})
        )
        assert [d["id"] for d in documents["items"]] == [accepted["document_id"]]
        document = structured(
            await session.call_tool("get_document", {"document_id": accepted["document_id"]})
        )
        assert document["content"] == HANDBOOK
        rest = await client.get(
            f"/api/v1/documents/{accepted['document_id']}", headers=owner.headers
        )
        assert rest.json() == document, "the tool returns the same JSON as the REST route"

        private = problem(
            await session.call_tool(
                "ingest_url", {"project_id": project["id"], "url": "http://127.0.0.1:9/"}
            )
        )
        assert private["status"] == 422, "loopback addresses need the explicit allow-list"

        added = await client.put(
            f"/api/v1/projects/{project['id']}/members/{viewer.id}",
            json={"role": "viewer"},
            headers=owner.headers,
        )
        assert added.status_code == 200, added.text

    async with mcp_session(base_url, viewer.headers) as session:
        found = structured(
            await session.call_tool(
                "query_knowledge", {"project_id": project["id"], "query_text": "holidays"}
            )
        )
        assert "two weeks ahead" in found["results"][0]["chunk_text"]
        refused = problem(
            await session.call_tool(
                "ingest_text", {"project_id": project["id"], "name": "x.md", "text": "x"}
            )
        )
        assert refused["status"] == 403


async def test_rate_limit_is_shared_with_rest(client: httpx.AsyncClient, ctx: AppContext) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    strict = dataclasses.replace(
        ctx, settings=ctx.settings.model_copy(update={"rate_limit_query": "2/minute"})
    )
    query = {"project_id": project["id"], "query_text": "anything"}
    async with serving(strict) as url, mcp_session(url, user.headers) as session:
        for _ in range(2):
            structured(await session.call_tool("query_knowledge", query))
        limited = problem(await session.call_tool("query_knowledge", query))
        assert limited["status"] == 429
        assert limited["retry_after"] >= 1
        async with httpx.AsyncClient() as http:
            rest = await http.post(f"{url}/api/v1/rag/query", json=query, headers=user.headers)
        assert rest.status_code == 429, "REST and MCP draw from the same bucket"
        assert rest.json()["title"] == limited["title"]


async def test_get_has_no_stream(base_url: str, client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    async with httpx.AsyncClient(timeout=10.0) as http:
        response = await http.get(
            f"{base_url}/mcp", headers={**user.headers, "Accept": "text/event-stream"}
        )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["content-type"] == "application/problem+json"
