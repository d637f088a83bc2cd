"""Crawling a small site served on loopback, through the API and a real worker."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from lorebase.context import AppContext
from lorebase.main import create_app
from tests.factories import TestUser, create_project, register_user
from tests.ingestion import drain
from tests.loopback_site import LoopbackSite, Route


@pytest.fixture(scope="module")
def crawl_ctx(ctx: AppContext) -> AppContext:
    """The shared context with settings that let the crawler reach 127.0.0.0/8, fast."""
    settings = ctx.settings.model_copy(
        update={
            "crawl_allow_private_networks": ["127.0.0.0/8"],
            "crawl_timeout_seconds": 1.0,
            "crawl_delay_seconds": 0.0,
            "crawl_max_depth": 20,
            "rate_limit_ingest": "1000/minute",
        }
    )
    return dataclasses.replace(ctx, settings=settings)


@pytest.fixture(scope="module")
async def crawl_client(crawl_ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(context=crawl_ctx)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


@pytest.fixture
def elsewhere() -> Iterator[LoopbackSite]:
    site = LoopbackSite({"/": Route("<html><body>another site</body></html>")})
    yield site
    site.stop()


@pytest.fixture
def site(elsewhere: LoopbackSite) -> Iterator[LoopbackSite]:
    site = LoopbackSite()
    site.routes["/robots.txt"] = Route(
        "User-agent: *\nDisallow: /private/\nSitemap: {base}/sitemap.xml\n",
        content_type="text/plain",
    )
    site.routes["/sitemap.xml"] = Route(
        "<?xml version='1.0'?><urlset><url><loc>{base}/docs/from-sitemap</loc></url></urlset>",
        content_type="application/xml",
    )
    site.routes["/llms.txt"] = Route(
        "# Example site\n\n- [For LLMs]({base}/docs/for-llms): a page only llms.txt lists\n",
        content_type="text/plain",
    )
    site.page(
        "/",
        "<h1>Home</h1><p>Welcome to the example site.</p>"
        '<a href="/docs/a">A</a> <a href="/private/secret">secret</a> '
        '<a href="/missing">gone</a> <a href="/slow">slow</a> <a href="/old">old</a> '
        '<a href="/redirect-private">metadata</a> <a href="/logo.png">logo</a> '
        f'<a href="http://localhost:{site.port}/docs/a">same port, other host</a> '
        f'<a href="{elsewhere.base}/">other site</a>',
        title="Home",
    )
    site.page(
        "/docs/a",
        "<h1>Alpha</h1><p>Apples grow on trees in the orchard.</p>"
        '<a href="/docs/b">B</a> <a href="/docs/a-copy">copy</a>',
        title="Alpha",
    )
    site.routes["/docs/a-copy"] = site.routes["/docs/a"]
    site.page(
        "/docs/b", '<h1>Beta</h1><p>Bananas are yellow.</p><a href="/docs/a">back</a>', title="Beta"
    )
    site.routes["/old"] = Route(status=301, headers={"Location": "/docs/c"})
    site.page("/docs/c", "<h1>Gamma</h1><p>Grapes make wine.</p>", title="Gamma")
    site.page("/docs/from-sitemap", "<h1>Sitemap only</h1><p>Found through the sitemap.</p>")
    site.page("/docs/for-llms", "<h1>For LLMs</h1><p>Found through llms.txt.</p>")
    site.page("/private/secret", "<p>Robots may not read this.</p>")
    site.routes["/slow"] = Route("<p>too late</p>", delay=2.5)
    site.routes["/redirect-private"] = Route(
        status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
    )
    yield site
    site.stop()


async def crawl(
    client: httpx.AsyncClient, ctx: AppContext, user: TestUser, **body: Any
) -> dict[str, Any]:
    response = await client.post("/api/v1/knowledge/crawl", json=body, headers=user.headers)
    assert response.status_code == 202, response.text
    await drain(ctx)
    job = await client.get(f"/api/v1/jobs/{response.json()['job_id']}", headers=user.headers)
    result: dict[str, Any] = job.json()
    return result


async def documents(client: httpx.AsyncClient, user: TestUser, project: dict[str, Any]) -> dict:
    response = await client.get(
        "/api/v1/documents",
        params={"project_id": project["id"], "limit": 500},
        headers=user.headers,
    )
    return {doc["source_uri"]: doc for doc in response.json()["items"]}


async def test_crawl_follows_links_sitemap_and_llms_txt_within_the_site(
    crawl_client: httpx.AsyncClient,
    crawl_ctx: AppContext,
    site: LoopbackSite,
    elsewhere: LoopbackSite,
) -> None:
    user = await register_user(crawl_client)
    project = await create_project(crawl_client, user.headers)
    job = await crawl(
        crawl_client, crawl_ctx, user, project_id=project["id"], url=site.base + "/", max_depth=2
    )
    assert job["status"] == "succeeded", job
    docs = await documents(crawl_client, user, project)
    base = site.base
    assert set(docs) == {
        f"{base}/",
        f"{base}/docs/a",
        f"{base}/docs/b",
        f"{base}/docs/c",
        f"{base}/docs/from-sitemap",
        f"{base}/docs/for-llms",
        f"{base}/llms.txt",
    }
    assert all(doc["type"] == "web" and doc["status"] == "ready" for doc in docs.values())
    assert docs[f"{base}/docs/a"]["name"] == "Alpha"
    result = job["result"]
    assert result["errors"][f"{base}/missing"] == "HTTP 404"
    assert result["errors"][f"{base}/slow"] == "timed out"
    assert result["skipped"][f"{base}/private/secret"] == "disallowed by robots.txt"
    assert "outside the site" in result["skipped"][f"{base}/redirect-private"]
    assert result["duplicates"] == {f"{base}/docs/a-copy": f"{base}/docs/a"}
    assert result["added"] == 7
    assert "/private/secret" not in site.hits, "robots.txt was honoured"
    assert "/logo.png" not in site.hits
    assert elsewhere.hits == [], "nothing outside the site was fetched"
    assert set(job["document_ids"]) == {doc["id"] for doc in docs.values()}
    assert job["progress"]["stages"]["crawl"]["done"] >= 7


async def test_recrawl_updates_changed_pages_only(
    crawl_client: httpx.AsyncClient, crawl_ctx: AppContext, site: LoopbackSite
) -> None:
    user = await register_user(crawl_client)
    project = await create_project(crawl_client, user.headers)
    body = {"project_id": project["id"], "url": site.base + "/", "max_depth": 2}
    first = await crawl(crawl_client, crawl_ctx, user, **body)
    assert first["result"]["added"] == 7
    again = await crawl(crawl_client, crawl_ctx, user, **body)
    assert (again["result"]["added"], again["result"]["updated"]) == (0, 0)
    assert again["result"]["unchanged"] == 7

    site.page("/docs/c", "<h1>Gamma</h1><p>Grapes make wine and raisins.</p>", title="Gamma")
    changed = await crawl(crawl_client, crawl_ctx, user, **body)
    assert changed["result"]["updated"] == 1
    assert changed["result"]["unchanged"] == 6
    docs = await documents(crawl_client, user, project)
    gamma = docs[f"{site.base}/docs/c"]
    assert gamma["version"] == "1.1.0"
    content = await crawl_client.get(f"/api/v1/documents/{gamma['id']}", headers=user.headers)
    assert "raisins" in content.json()["content"]


async def test_robots_txt_can_be_overridden(
    crawl_client: httpx.AsyncClient, crawl_ctx: AppContext, site: LoopbackSite
) -> None:
    user = await register_user(crawl_client)
    project = await create_project(crawl_client, user.headers)
    job = await crawl(
        crawl_client,
        crawl_ctx,
        user,
        project_id=project["id"],
        url=site.base + "/private/secret",
        respect_robots_txt=False,
    )
    assert job["status"] == "succeeded"
    assert list(await documents(crawl_client, user, project)) == [site.base + "/private/secret"]


async def test_fifty_page_site_stays_in_scope(
    crawl_client: httpx.AsyncClient, crawl_ctx: AppContext, elsewhere: LoopbackSite
) -> None:
    site = LoopbackSite()
    try:
        site.page("/", '<p>Index of the manual.</p><a href="/p/0">start</a>', title="Index")
        for i in range(50):
            links = "".join(f'<a href="/p/{(i + step) % 50}">next</a>' for step in (1, 7, 13))
            site.page(
                f"/p/{i}",
                f"<h1>Page {i}</h1><p>Chapter {i} explains topic number {i} in depth.</p>"
                f'{links}<a href="{elsewhere.base}/p/{i}">mirror</a>',
                title=f"Page {i}",
            )
        user = await register_user(crawl_client)
        project = await create_project(crawl_client, user.headers)
        job = await crawl(
            crawl_client,
            crawl_ctx,
            user,
            project_id=project["id"],
            url=site.base + "/",
            max_depth=20,
            max_pages=500,
            discover=False,
        )
        assert job["status"] == "succeeded", job
        docs = await documents(crawl_client, user, project)
        assert set(docs) == {site.base + "/"} | {f"{site.base}/p/{i}" for i in range(50)}
        assert elsewhere.hits == []
    finally:
        site.stop()


async def test_max_pages_caps_the_crawl(
    crawl_client: httpx.AsyncClient, crawl_ctx: AppContext, site: LoopbackSite
) -> None:
    user = await register_user(crawl_client)
    project = await create_project(crawl_client, user.headers)
    job = await crawl(
        crawl_client,
        crawl_ctx,
        user,
        project_id=project["id"],
        url=site.base + "/",
        max_depth=3,
        max_pages=3,
    )
    assert job["status"] == "succeeded"
    assert len(await documents(crawl_client, user, project)) == 3


async def test_unreachable_start_page_fails_the_job_readably(
    crawl_client: httpx.AsyncClient, crawl_ctx: AppContext, site: LoopbackSite
) -> None:
    user = await register_user(crawl_client)
    project = await create_project(crawl_client, user.headers)
    job = await crawl(
        crawl_client, crawl_ctx, user, project_id=project["id"], url=site.base + "/missing"
    )
    assert job["status"] == "failed"
    assert job["error"] == "the start page could not be crawled: HTTP 404"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost:{port}/",
    ],
)
async def test_private_destinations_are_refused_at_request_time(
    client: httpx.AsyncClient, site: LoopbackSite, url: str
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    response = await client.post(
        "/api/v1/knowledge/crawl",
        json={"project_id": project["id"], "url": url.format(port=site.port)},
        headers=user.headers,
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["errors"][0]["field"] == "url"
    assert "private" in problem["detail"]
    assert site.hits == []
