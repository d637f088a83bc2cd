"""The README's "give your agent a memory" walkthrough against a real `lorebase serve` on the
embedded defaults: register, mint an API key, then an MCP client over streamable HTTP creates a
project, ingests, waits for the server's worker and queries. `lorebase mcp` on the same data dir
is turned away with directions to the HTTP endpoint."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult

from tests.e2e.conftest import LOREBASE, LorebaseServer

pytestmark = pytest.mark.e2e

TEXT = "Backups run nightly at 02:00 and are kept for thirty days in the cold-storage bucket."


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _api_key(base: str) -> str:
    user = {"username": "agent-owner", "password": "a long enough password"}
    assert httpx.post(f"{base}/api/v1/auth/register", json=user).status_code == 201
    token = httpx.post(f"{base}/api/v1/auth/token", data=user).json()["access_token"]
    minted = httpx.post(
        f"{base}/api/v1/api-keys",
        json={"name": "my agent", "scopes": ["read", "write"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert minted.status_code == 201, minted.text
    key: str = minted.json()["key"]
    return key


async def test_walkthrough_over_http_on_serve(server_factory: type[LorebaseServer]) -> None:
    server = server_factory()
    server.start()
    key = _api_key(server.url)

    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30.0) as http,
        streamable_http_client(f"{server.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        project = structured(await session.call_tool("create_project", {"name": "ops"}))
        accepted = structured(
            await session.call_tool(
                "ingest_text", {"project_id": project["id"], "name": "backups.md", "text": TEXT}
            )
        )
        for _ in range(300):  # the worker inside `serve` indexes it
            job = structured(await session.call_tool("get_job", {"job_id": accepted["job_id"]}))
            if job["status"] not in ("queued", "running"):
                break
            await asyncio.sleep(0.2)
        assert job["status"] == "succeeded", job
        found = structured(
            await session.call_tool(
                "query_knowledge",
                {"project_id": project["id"], "query_text": "how long are backups kept"},
            )
        )
        assert "thirty days" in found["results"][0]["chunk_text"]

    stdio = subprocess.run(
        [LOREBASE, "mcp"],
        env={**server.env, "LOREBASE_TOKEN": key},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert stdio.returncode == 1
    assert stdio.stdout == ""
    assert "is in use by" in stdio.stderr
    assert "/mcp" in stdio.stderr, "the refusal points at the streamable-HTTP endpoint"
