"""`lorebase mcp` as an agent host runs it: a subprocess speaking MCP on stdio, pointed at the
test session's PostgreSQL and Redis, authenticated by LOREBASE_TOKEN."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult

from lorebase.settings import Settings
from tests.e2e.conftest import LOREBASE
from tests.factories import create_project, register_user

pytestmark = pytest.mark.e2e

DEPLOYS = (
    "# Deploys\n\nProduction deploys happen on Tuesdays and must be approved by the release "
    "captain. Staging deploys need no approval."
)


def _env(settings: Settings, data_dir: Path, token: str) -> dict[str, str]:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    assert settings.lorebase_secret_key is not None
    return {
        "DATABASE_URL": settings.database_url.get_secret_value(),
        "REDIS_URL": settings.redis_url.get_secret_value(),
        "REDIS_PREFIX": settings.redis_prefix,
        "LOREBASE_SECRET_KEY": settings.lorebase_secret_key.get_secret_value(),
        "LOREBASE_DATA_DIR": str(data_dir),
        "LOREBASE_TOKEN": token,
        "ACCESS_LOG": "false",
    }


@asynccontextmanager
async def stdio_session(
    settings: Settings, tmp_path: Path, token: str
) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=LOREBASE, args=["mcp"], env=_env(settings, tmp_path / "data", token), cwd=tmp_path
    )
    with (tmp_path / "mcp-stderr.log").open("a") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def problem(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    body: dict[str, Any] = json.loads(text)
    assert body == result.structured_content
    return body


async def test_stdio_tools_end_to_end(
    settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    user = await register_user(client)
    token = user.headers["Authorization"].removeprefix("Bearer ")
    async with stdio_session(settings, tmp_path, token) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert {"list_projects", "create_project", "create_task", "update_task"} <= names

        project = structured(await session.call_tool("create_project", {"name": "stdio"}))
        assert project["owner_id"] == user.id

        first = structured(
            await session.call_tool(
                "create_task", {"project_id": project["id"], "title": "write the docs"}
            )
        )
        second = structured(
            await session.call_tool(
                "create_task",
                {"project_id": project["id"], "title": "ship", "dependencies": [first["id"]]},
            )
        )
        blocked = problem(
            await session.call_tool("update_task", {"task_id": second["id"], "status": "done"})
        )
        assert blocked["status"] == 409
        assert "write the docs" in blocked["detail"]
        assigned = structured(
            await session.call_tool("update_task", {"task_id": first["id"], "assignee": "agent"})
        )
        assert assigned["assignee"] == "agent"
        assert assigned["title"] == "write the docs", "fields not sent are left alone"
        cleared = structured(
            await session.call_tool("update_task", {"task_id": first["id"], "assignee": None})
        )
        assert cleared["assignee"] is None, "null clears, as on REST"
        todo = structured(
            await session.call_tool("list_tasks", {"project_id": project["id"], "status": "todo"})
        )
        assert todo["total"] == 2

        accepted = structured(
            await session.call_tool(
                "ingest_text",
                {"project_id": project["id"], "name": "deploys.md", "text": DEPLOYS},
            )
        )
        # Indexed by the job worker inside `lorebase mcp` (nothing else runs jobs here).
        deadline = time.monotonic() + 60
        while True:
            job = structured(await session.call_tool("get_job", {"job_id": accepted["job_id"]}))
            if job["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, f"job still {job['status']}"
            await asyncio.sleep(0.2)
        assert job["status"] == "succeeded", job["error"]
        found = structured(
            await session.call_tool(
                "query_knowledge",
                {"project_id": project["id"], "query_text": "who approves production deploys"},
            )
        )
        assert "approved by the release captain" in found["results"][0]["chunk_text"]


async def test_stdio_viewer_is_refused_writes(
    settings: Settings, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    owner = await register_user(client)
    viewer = await register_user(client)
    project = await create_project(client, owner.headers)
    member = await client.put(
        f"/api/v1/projects/{project['id']}/members/{viewer.id}",
        json={"role": "viewer"},
        headers=owner.headers,
    )
    assert member.status_code == 200, member.text
    token = viewer.headers["Authorization"].removeprefix("Bearer ")
    async with stdio_session(settings, tmp_path, token) as session:
        listed = structured(await session.call_tool("list_tasks", {"project_id": project["id"]}))
        assert listed["total"] == 0
        refused = problem(
            await session.call_tool(
                "ingest_text", {"project_id": project["id"], "name": "x.md", "text": "x"}
            )
        )
        assert refused["status"] == 403
        assert refused["title"] == "Forbidden"
        no_task = problem(
            await session.call_tool("create_task", {"project_id": project["id"], "title": "x"})
        )
        assert no_task["status"] == 403


async def test_stdio_bad_token_is_refused(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ExceptionGroup) as refused:
        async with stdio_session(settings, tmp_path, "not-a-token"):
            pass
    errors = [str(exc) for exc in _leaves(refused.value) if isinstance(exc, MCPError)]
    assert errors == ["Connection closed"], refused.value
    stderr = (tmp_path / "mcp-stderr.log").read_text().strip().splitlines()
    assert stderr[-1] == "lorebase: LOREBASE_TOKEN was refused: invalid token"
