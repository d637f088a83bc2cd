"""The crawl job: each page becomes a document version through `upsert_source_document`
(indexed inline, no job per page). A re-crawl of a source is incremental: requests carry the
validators the last sync stored (a 304 costs nothing), unchanged content is never embedded
again, and pages that are gone are retired from search (kept with their versions). The git job
lives in `sync_git`."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.context import AppContext
from lorebase.knowledge import repository, sources_repository
from lorebase.knowledge.extract import ExtractionError
from lorebase.knowledge.pipeline import Source, SourceDocument, upsert_source_document
from lorebase.knowledge.sources import crawl, crawl_model
from lorebase.knowledge.sources.netguard import parse_networks
from lorebase.knowledge.sync_base import (
    Counts,
    Tracker,
    retire_document,
    source_id_of,
    source_items,
)
from lorebase.knowledge.sync_git import sync_repository

__all__ = ["Tracker", "sync_repository", "sync_site"]

MISSES_TO_RETIRE = 2  # syncs in a row that found a page 404/410


def crawl_options(ctx: AppContext, payload: dict[str, Any]) -> crawl_model.CrawlOptions:
    settings = ctx.settings
    return crawl_model.CrawlOptions(
        start_url=payload["url"],
        max_depth=int(payload.get("max_depth") or 0),
        max_pages=int(payload.get("max_pages") or settings.crawl_max_pages),
        respect_robots_txt=bool(payload.get("respect_robots_txt", True)),
        discover=bool(payload.get("discover", True)),
        delay_seconds=settings.crawl_delay_seconds,
        concurrency=settings.crawl_concurrency,
        timeout_seconds=settings.crawl_timeout_seconds,
        max_bytes=settings.max_upload_bytes,
        user_agent=settings.crawl_user_agent,
        allowed_networks=parse_networks(settings.crawl_allow_private_networks),
    )


def known_pages(items: dict[str, dict[str, Any]]) -> dict[str, crawl_model.Known]:
    """Pages whose document is searchable as stored: only these may answer 304 (a retired,
    failed or deleted document is fetched in full and indexed again)."""
    return {
        uri: crawl_model.Known(
            etag=item["etag"],
            last_modified=item["last_modified"],
            content_hash=item["content_hash"],
            links=tuple(item["links"] or ()),
        )
        for uri, item in items.items()
        if item["document_status"] == "ready" and not item["retired"]
    }


async def sync_site(ctx: AppContext, row: dict[str, Any], tracker: Tracker) -> dict[str, Any]:
    """A `crawl` job: every page in scope becomes (or updates) a `web` document."""
    payload = row["payload"]
    source_id = source_id_of(payload)
    items = await source_items(ctx, source_id)
    counts = Counts()
    crawler = crawl.Crawler(crawl_options(ctx, payload), known=known_pages(items))
    tags = list(payload.get("tags") or [])

    async def on_page(page: crawl_model.Page) -> None:
        if page.not_modified:
            counts.add("not_modified")
            document_id = items[page.url]["document_id"]
        else:
            try:
                document_id, outcome = await upsert_source_document(
                    ctx, item=_page_item(row, page, tags), progress=tracker
                )
            except ExtractionError as exc:
                crawler.report.errors[page.url] = str(exc)
                return
            counts.add(outcome)
        async with ctx.db.transaction() as conn:
            await repository.add_job_documents(conn, job_id=row["id"], document_ids=[document_id])
            if source_id is not None:
                await sources_repository.upsert_item(
                    conn,
                    source_id=source_id,
                    uri=page.url,
                    document_id=document_id,
                    etag=page.etag,
                    last_modified=page.last_modified,
                    content_hash=page.content_hash,
                    links=page.links,
                )

    async def on_progress(done: int, total: int) -> None:
        await tracker.set_overall(done, total, stage="crawl")

    report = await crawler.crawl(on_page, on_progress)
    complete = not report.truncated and not (report.failed - set(items))
    if source_id is not None:
        retired = await retire_gone(
            ctx, row["project_id"], source_id, items, report, crawler.seen, complete
        )
        counts.add("retired", retired)
        async with ctx.db.transaction() as conn:
            state = {"crawl": {"job_id": str(row["id"]), "complete": complete}}
            await sources_repository.set_state(conn, source_id=source_id, state=state)
    counts.add("errors", len(report.errors))
    return {**report.summary(), **counts.result()}


def _page_item(row: dict[str, Any], page: crawl_model.Page, tags: list[str]) -> SourceDocument:
    meta = {"source": page.url, "url": page.url, "title": page.title}
    return SourceDocument(
        project_id=row["project_id"],
        source_uri=page.url,
        name=page.title or page.url,
        type="web",
        source=Source(format=page.format, data=page.data, text=page.text, meta=meta),
        content_hash=page.content_hash,
        size_bytes=len(page.data or (page.text or "").encode()),
        mime_type=page.content_type,
        tags=tags,
        metadata={"url": page.url, "crawl_job_id": str(row["id"]), "depth": page.depth},
        created_by=row["created_by"],
    )


async def retire_gone(
    ctx: AppContext,
    project_id: UUID,
    source_id: UUID,
    items: dict[str, dict[str, Any]],
    report: crawl_model.CrawlReport,
    linked: set[str],
    complete: bool,
) -> int:
    """Retire the pages that are gone: 404/410 on `MISSES_TO_RETIRE` syncs in a row, or no
    longer linked from anywhere in scope by a crawl that ran to completion (a crawl cut short
    by `max_pages`, or that could not read a new page, has not seen every link). A timeout,
    5xx or connection error is no evidence either way. One transaction, at the end of the
    sync: a job that fails or is retried counts no miss."""
    retired = 0
    async with ctx.db.transaction() as conn:
        for uri, item in items.items():
            if item["retired"]:
                continue
            if uri in report.gone:
                misses = await sources_repository.count_miss(conn, source_id=source_id, uri=uri)
                if misses < MISSES_TO_RETIRE:
                    continue
            elif not complete or uri in linked:
                continue
            await sources_repository.mark_retired(conn, source_id=source_id, uri=uri)
            if item["document_id"] is not None:
                await retire_document(conn, project_id=project_id, document_id=item["document_id"])
            retired += 1
    return retired
