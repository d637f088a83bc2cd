"""Shared by the `/openai/v1` tests: the official `openai` SDK over the in-process app, a
project seeded with the retrieval test documents, and API keys made through the REST API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import openai

from lorebase.context import AppContext
from tests.factories import TestUser, create_project
from tests.integration.test_rag_api import DOCS
from tests.retrieval_seed import seed_document

BASE = "http://testserver/openai/v1"


@asynccontextmanager
async def sdk(app: Any, api_key: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """`AsyncOpenAI` talking to `app` in-process; no SDK retries (a test sees each status)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport) as http:
        yield openai.AsyncOpenAI(base_url=BASE, api_key=api_key, http_client=http, max_retries=0)


async def api_key(
    client: httpx.AsyncClient, user: TestUser, *, project_id: str | None = None
) -> str:
    body: dict[str, Any] = {"name": f"key-{uuid.uuid4().hex[:6]}", "scopes": ["read"]}
    if project_id is not None:
        body["project_id"] = project_id
    response = await client.post("/api/v1/api-keys", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    key: str = response.json()["key"]
    return key


async def seeded_project(
    client: httpx.AsyncClient, ctx: AppContext, user: TestUser, **fields: Any
) -> dict[str, Any]:
    project = await create_project(client, user.headers, **fields)
    for name, chunks in DOCS.items():
        await seed_document(ctx, project_id=uuid.UUID(project["id"]), name=name, chunks=chunks)
    return project


def all_text() -> str:
    return " ".join(" ".join(chunks) for chunks in DOCS.values())
