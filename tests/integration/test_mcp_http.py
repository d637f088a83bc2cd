"""MCP over streamable HTTP at `/mcp`, driven by the official MCP client against the app served
by uvicorn on a loopback port: tools, structured results, roles and refused credentials."""

from __future__ import annotations

import asyncio
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
from mcp.types import CallToolResult

from lorebase.context import AppContext
from lorebase.main import create_app
from tests.factories import register_user


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
async def base_url(ctx: AppContext) -> AsyncIterator[str]:
    """A fresh app (its own MCP session manager) on a real loopback socket."""
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
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    await task


@asynccontextmanager
async def mcp_session(base_url: str, headers: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30.0) as http,
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
        assert {"list_projects", "create_project"} <= set(tools)
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
