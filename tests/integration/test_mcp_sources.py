"""The MCP tools `list_sources` and `sync_source` over streamable HTTP, with the official MCP
client: the REST services, roles, 404s and the one-sync-at-a-time rule."""

from __future__ import annotations

import dataclasses

import httpx

from lorebase.context import AppContext
from tests.factories import create_project, register_user
from tests.integration.test_mcp_http import (
    mcp_session,
    problem,
    serving,
    structured,
    wait_for_job,
)
from tests.loopback_site import LoopbackSite


async def test_sources_are_listed_and_synced_with_the_rest_rules(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    site = LoopbackSite()
    site.page("/", "<h1>Source</h1><p>A page an agent keeps fresh.</p>")
    owner, viewer, stranger = [await register_user(client) for _ in range(3)]
    project = await create_project(client, owner.headers)
    member = await client.put(
        f"/api/v1/projects/{project['id']}/members/{viewer.id}",
        json={"role": "viewer"},
        headers=owner.headers,
    )
    assert member.status_code == 200
    loopback = dataclasses.replace(
        ctx,
        settings=ctx.settings.model_copy(update={"crawl_allow_private_networks": ["127.0.0.1/32"]}),
    )
    listing = {"project_id": project["id"]}
    try:
        async with serving(loopback) as url, mcp_session(url, owner.headers) as session:
            accepted = structured(
                await session.call_tool("ingest_url", {**listing, "url": site.base + "/"})
            )
            (source,) = structured(await session.call_tool("list_sources", listing))["items"]
            assert (source["kind"], source["uri"]) == ("crawl", site.base + "/")
            assert (source["status"], source["last_job_id"]) == ("queued", accepted["job_id"])
            busy = problem(await session.call_tool("sync_source", {"source_id": source["id"]}))
            assert busy["status"] == 409
            await wait_for_job(session, loopback, accepted["job_id"])
            synced = structured(await session.call_tool("list_sources", listing))["items"][0]
            assert (synced["status"], synced["documents"]) == ("idle", 1)
            again = structured(await session.call_tool("sync_source", {"source_id": source["id"]}))
            assert (await wait_for_job(session, loopback, again["job_id"]))["status"] == "succeeded"

            async with mcp_session(url, viewer.headers) as as_viewer:
                seen = structured(await as_viewer.call_tool("list_sources", listing))
                assert seen["total"] == 1
                refused = problem(
                    await as_viewer.call_tool("sync_source", {"source_id": source["id"]})
                )
                assert refused["status"] == 403
            async with mcp_session(url, stranger.headers) as as_stranger:
                hidden = problem(await as_stranger.call_tool("list_sources", listing))
                assert hidden["status"] == 404
                unknown = problem(
                    await as_stranger.call_tool("sync_source", {"source_id": source["id"]})
                )
                assert (unknown["status"], unknown["detail"]) == (404, "source not found")
    finally:
        site.stop()
