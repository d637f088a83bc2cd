"""Helpers for the tests of sources: a context whose crawler may reach loopback, a small site,
and a project with one crawl source."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from lorebase.context import AppContext
from lorebase.main import create_app
from tests.factories import TestUser, create_project, register_user
from tests.ingestion import drain
from tests.loopback_site import LoopbackSite

API = "/api/v1"


def loopback_ctx(ctx: AppContext, **settings: Any) -> AppContext:
    """`ctx` with a crawler that may reach 127.0.0.0/8, fast (plus `settings`)."""
    values = {
        "crawl_allow_private_networks": ["127.0.0.0/8"],
        "crawl_timeout_seconds": 2.0,
        "crawl_delay_seconds": 0.0,
        **settings,
    }
    return dataclasses.replace(ctx, settings=ctx.settings.model_copy(update=values))


@asynccontextmanager
async def api_client(ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    """The app over `ctx`, in process."""
    application = create_app(context=ctx)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def three_pages() -> LoopbackSite:
    site = LoopbackSite()
    site.page("/", '<h1>Home</h1><p>Welcome home.</p><a href="/a">A</a> <a href="/b">B</a>')
    site.page("/a", "<h1>Alpha</h1><p>Apples grow on trees in the orchard.</p>", title="Alpha")
    site.page("/b", "<h1>Beta</h1><p>Bananas are yellow and curved.</p>", title="Beta")
    return site


@dataclasses.dataclass
class Crawled:
    user: TestUser
    project: dict[str, Any]
    source: dict[str, Any]
    job_id: str


async def crawled(
    http: httpx.AsyncClient, ctx: AppContext, site: LoopbackSite, *, run: bool = True
) -> Crawled:
    """A user, a project and one crawl source (synced unless `run` is False)."""
    user = await register_user(http)
    project = await create_project(http, user.headers)
    response = await http.post(
        f"{API}/knowledge/crawl",
        json={"project_id": project["id"], "url": site.base + "/", "max_depth": 1},
        headers=user.headers,
    )
    assert response.status_code == 202, response.text
    if run:
        await drain(ctx)
    listed = await http.get(f"{API}/projects/{project['id']}/sources", headers=user.headers)
    assert listed.status_code == 200, listed.text
    (source,) = listed.json()["items"]
    return Crawled(user, project, source, response.json()["job_id"])


async def source_of(http: httpx.AsyncClient, c: Crawled) -> dict[str, Any]:
    response = await http.get(f"{API}/sources/{c.source['id']}", headers=c.user.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def count(ctx: AppContext, sql: str, *params: Any) -> int:
    async with ctx.db.connection() as conn:
        cursor = await conn.execute(sql, params)
        row = await cursor.fetchone()
    assert row is not None
    return int(row["n"])
