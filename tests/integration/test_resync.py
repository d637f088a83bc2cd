"""Re-crawling a source: conditional requests, the content-hash gate, retiring pages that are
gone, and a transient error that retires nothing. A loopback site, a real worker, and an
embedder (registered through the provider registry) that records what it is sent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from lorebase.context import AppContext
from lorebase.main import create_app
from tests.counting_embedder import CountingEmbedder, counting_context, forget_cached_embeddings
from tests.factories import TestUser, create_project, register_user
from tests.ingestion import chunks_of
from tests.integration.test_crawl import crawl, documents
from tests.loopback_site import LoopbackSite, Route


@pytest.fixture(scope="module")
def counted(ctx: AppContext) -> tuple[AppContext, CountingEmbedder]:
    return counting_context(
        ctx,
        crawl_allow_private_networks=["127.0.0.0/8"],
        crawl_timeout_seconds=1.0,
        crawl_delay_seconds=0.0,
        rate_limit_ingest="1000/minute",
    )


@pytest.fixture(scope="module")
def resync_ctx(counted: tuple[AppContext, CountingEmbedder]) -> AppContext:
    return counted[0]


@pytest.fixture(scope="module")
async def http(resync_ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(context=resync_ctx)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


def html(title: str, text: str, links: str = "") -> str:
    return f"<html><head><title>{title}</title></head><body><p>{text}</p>{links}</body></html>"


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    site = LoopbackSite()
    site.routes["/"] = Route(
        html(
            "Home",
            "The orchard handbook, index page.",
            '<a href="/keep">keep</a> <a href="/change">change</a> <a href="/gone">gone</a>',
        )
    )
    site.routes["/keep"] = Route(
        html("Keep", "Quinces ripen slowly in cold autumn weather."), etag='"keep-1"'
    )
    site.routes["/change"] = Route(
        html("Change", "Plums are pruned in early summer."), etag='"change-1"'
    )
    site.routes["/gone"] = Route(
        html("Gone", "Medlars are eaten bletted."), last_modified="Tue, 01 Dec 2026 10:00:00 GMT"
    )
    yield site
    site.stop()


async def search(
    client: httpx.AsyncClient, user: TestUser, project: dict[str, Any], text: str
) -> set[str]:
    response = await client.post(
        "/api/v1/rag/query",
        json={"project_id": project["id"], "query_text": text, "top_k": 10},
        headers=user.headers,
    )
    assert response.status_code == 200, response.text
    return {result["document_name"] for result in response.json()["results"]}


async def assert_listed_as_retired(
    client: httpx.AsyncClient, user: TestUser, project: dict[str, Any], gone: dict[str, Any]
) -> None:
    """The document list filters on `retired`; the document keeps its versions."""
    versions = await client.get(f"/api/v1/documents/{gone['id']}/versions", headers=user.headers)
    assert [v["version"] for v in versions.json()["items"]] == ["1.0.0"], "history is kept"
    retired = await client.get(
        "/api/v1/documents",
        params={"project_id": project["id"], "status": "retired"},
        headers=user.headers,
    )
    assert [doc["id"] for doc in retired.json()["items"]] == [gone["id"]]


async def resync(
    client: httpx.AsyncClient,
    ctx: AppContext,
    user: TestUser,
    body: dict[str, Any],
    embedder: CountingEmbedder,
) -> dict[str, Any]:
    """One more crawl of the source, from an empty embedding cache and a fresh count."""
    await forget_cached_embeddings(ctx)
    embedder.texts.clear()
    job = await crawl(client, ctx, user, **body)
    assert job["status"] == "succeeded", job
    result: dict[str, Any] = job["result"]
    return result


async def test_resync_versions_the_changed_page_retires_the_gone_one_and_skips_the_rest(
    http: httpx.AsyncClient,
    resync_ctx: AppContext,
    counted: tuple[AppContext, CountingEmbedder],
    site: LoopbackSite,
) -> None:
    embedder = counted[1]
    user = await register_user(http)
    project = await create_project(http, user.headers)
    body = {"project_id": project["id"], "url": site.base + "/", "max_depth": 1, "discover": False}
    first = await resync(http, resync_ctx, user, body, embedder)
    assert first["counts"]["added"] == 4
    assert any("Quinces" in text for text in embedder.texts)

    site.routes["/change"] = Route(
        html("Change", "Plums are pruned in late winter instead."), etag='"change-2"'
    )
    del site.routes["/gone"]  # now 404, still linked from the home page
    second = await resync(http, resync_ctx, user, body, embedder)
    assert second["counts"] == {
        "added": 0,
        "updated": 1,
        "unchanged": 1,  # the home page: no validators, same content
        "not_modified": 1,  # /keep answered 304
        "retired": 0,  # one 404 is not enough
        "errors": 1,
    }
    assert second["errors"] == {f"{site.base}/gone": "HTTP 404"}
    assert "/keep" in site.not_modified
    assert embedder.texts, "the changed page was embedded"
    assert all("winter" in text for text in embedder.texts), embedder.texts
    docs = await documents(http, user, project)
    assert docs[f"{site.base}/change"]["version"] == "1.1.0"
    assert docs[f"{site.base}/keep"]["version"] == "1.0.0"
    assert docs[f"{site.base}/gone"]["status"] == "ready"
    assert "Gone" in await search(http, user, project, "medlars eaten bletted")

    third = await resync(http, resync_ctx, user, body, embedder)
    assert (third["counts"]["retired"], third["counts"]["not_modified"]) == (1, 2)
    assert embedder.texts == [], "nothing changed: nothing embedded"
    docs = await documents(http, user, project)
    gone = docs[f"{site.base}/gone"]
    assert gone["status"] == "retired"
    assert await chunks_of(resync_ctx, gone["id"]) == []
    assert "Gone" not in await search(http, user, project, "medlars eaten bletted")
    await assert_listed_as_retired(http, user, project, gone)
    assert {doc["status"] for uri, doc in docs.items() if uri != gone["source_uri"]} == {"ready"}

    site.routes["/gone"] = Route(html("Gone", "Medlars are eaten bletted."))
    back = await resync(http, resync_ctx, user, body, embedder)
    assert back["counts"]["updated"] == 1
    assert any("Medlars" in text for text in embedder.texts)
    docs = await documents(http, user, project)
    assert docs[f"{site.base}/gone"]["status"] == "ready"
    assert "Gone" in await search(http, user, project, "medlars eaten bletted")


async def test_transient_errors_never_retire_and_unlinked_pages_do(
    http: httpx.AsyncClient,
    resync_ctx: AppContext,
    counted: tuple[AppContext, CountingEmbedder],
    site: LoopbackSite,
) -> None:
    embedder = counted[1]
    user = await register_user(http)
    project = await create_project(http, user.headers)
    body = {"project_id": project["id"], "url": site.base + "/", "max_depth": 2, "discover": False}
    site.routes["/keep"] = Route(
        html("Keep", "Quinces ripen slowly.", '<a href="/deep">deep</a>'), etag='"keep-1"'
    )
    site.routes["/deep"] = Route(html("Deep", "Only the keep page links here."))
    await resync(http, resync_ctx, user, body, embedder)

    # /keep fails for now (503, then a timeout): nothing behind it is lost, no miss is counted.
    site.routes["/keep"] = Route("busy", status=503)
    site.routes["/gone"] = Route(html("Gone", "Medlars."), status=503)
    busy = await resync(http, resync_ctx, user, body, embedder)
    assert busy["counts"]["retired"] == 0
    site.routes["/keep"] = Route("late", delay=2.5)
    slow = await resync(http, resync_ctx, user, body, embedder)
    assert slow["counts"]["retired"] == 0
    assert slow["errors"][f"{site.base}/keep"] == "timed out"
    docs = await documents(http, user, project)
    assert {doc["status"] for doc in docs.values()} == {"ready"}
    assert len(docs) == 5

    # The home page stops linking /change: a complete crawl retires it...
    site.routes["/keep"] = Route(html("Keep", "Quinces ripen slowly.", '<a href="/deep">d</a>'))
    site.routes["/gone"] = Route(html("Gone", "Medlars are eaten bletted."))
    site.routes["/"] = Route(html("Home", "Index.", '<a href="/keep">k</a> <a href="/gone">g</a>'))
    unlinked = await resync(http, resync_ctx, user, body, embedder)
    assert unlinked["counts"]["retired"] == 1
    docs = await documents(http, user, project)
    assert docs[f"{site.base}/change"]["status"] == "retired"
    assert docs[f"{site.base}/deep"]["status"] == "ready", "still linked through /keep"


async def test_a_crawl_cut_short_by_max_pages_retires_nothing_unlinked(
    http: httpx.AsyncClient,
    resync_ctx: AppContext,
    counted: tuple[AppContext, CountingEmbedder],
    site: LoopbackSite,
) -> None:
    embedder = counted[1]
    user = await register_user(http)
    project = await create_project(http, user.headers)
    body = {"project_id": project["id"], "url": site.base + "/", "max_depth": 1, "discover": False}
    await resync(http, resync_ctx, user, body, embedder)
    capped = await resync(http, resync_ctx, user, {**body, "max_pages": 2}, embedder)
    assert capped["pages"] == 2
    assert capped["counts"]["retired"] == 0
    docs = await documents(http, user, project)
    assert len(docs) == 4
    assert {doc["status"] for doc in docs.values()} == {"ready"}


def test_route_validators_are_sent_back(site: LoopbackSite) -> None:
    """The loopback site itself: a matching validator gets a 304 (so the tests above can fail)."""
    keep = httpx.get(site.base + "/keep", headers={"If-None-Match": '"keep-1"'})
    assert keep.status_code == 304
    other = httpx.get(site.base + "/keep", headers={"If-None-Match": '"keep-0"'})
    assert other.status_code == 200
    assert other.headers["etag"] == '"keep-1"'
    dated = httpx.get(
        site.base + "/gone", headers={"If-Modified-Since": "Tue, 01 Dec 2026 10:00:00 GMT"}
    )
    assert dated.status_code == 304
    plain = httpx.get(site.base + "/", headers={"If-None-Match": '"keep-1"'})
    assert plain.status_code == 200, "a route without validators always answers in full"


async def test_a_sitemap_that_fails_for_now_retires_none_of_its_pages(
    http: httpx.AsyncClient,
    resync_ctx: AppContext,
    counted: tuple[AppContext, CountingEmbedder],
    site: LoopbackSite,
) -> None:
    embedder = counted[1]
    user = await register_user(http)
    project = await create_project(http, user.headers)
    body = {"project_id": project["id"], "url": site.base + "/", "max_depth": 1}
    listed = "<?xml version='1.0'?><urlset><url><loc>{base}/listed</loc></url></urlset>"
    site.routes["/sitemap.xml"] = Route(listed, content_type="application/xml")
    site.routes["/listed"] = Route(html("Listed", "Only the sitemap lists this page."))
    await resync(http, resync_ctx, user, body, embedder)
    assert (await documents(http, user, project))[f"{site.base}/listed"]["status"] == "ready"

    site.routes["/sitemap.xml"] = Route("busy", status=503)
    busy = await resync(http, resync_ctx, user, body, embedder)
    assert busy["counts"]["retired"] == 0
    empty = "<?xml version='1.0'?><urlset></urlset>"
    site.routes["/sitemap.xml"] = Route(empty, content_type="application/xml")
    dropped = await resync(http, resync_ctx, user, body, embedder)
    assert dropped["counts"]["retired"] == 1
    assert (await documents(http, user, project))[f"{site.base}/listed"]["status"] == "retired"
