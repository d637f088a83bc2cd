"""The crawl and git jobs: each page or repository file becomes a document version through
`upsert_source_document` (indexed inline, no job per file); a repository's vanished files
are deleted."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from lorebase.content import TEXT_AS_IS, sha256
from lorebase.context import AppContext
from lorebase.documents import indexing as documents
from lorebase.knowledge import repository
from lorebase.knowledge.extract import ExtractionError
from lorebase.knowledge.pipeline import Progress, Source, SourceDocument, upsert_source_document
from lorebase.knowledge.sources import crawl, crawl_model, git
from lorebase.knowledge.sources.netguard import parse_networks


class Tracker(Progress, Protocol):
    async def set_overall(self, done: int, total: int, *, stage: str | None = None) -> None:
        """The job's overall progress (pages or files), shown instead of the stage's."""


class _Counts:
    def __init__(self) -> None:
        self.added = 0
        self.updated = 0
        self.unchanged = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, int]:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged}


async def sync_site(ctx: AppContext, row: dict[str, Any], tracker: Tracker) -> dict[str, Any]:
    """A `crawl` job: every page in scope becomes (or updates) a `web` document."""
    payload = row["payload"]
    settings = ctx.settings
    options = crawl_model.CrawlOptions(
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
    counts = _Counts()
    tags = list(payload.get("tags") or [])

    async def on_page(page: crawl_model.Page) -> None:
        meta = {"source": page.url, "url": page.url, "title": page.title}
        item = SourceDocument(
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
        try:
            document_id, outcome = await upsert_source_document(ctx, item=item, progress=tracker)
        except ExtractionError as exc:
            crawler.report.errors[page.url] = str(exc)
            return
        counts.add(outcome)
        async with ctx.db.connection() as conn:
            await repository.add_job_documents(conn, job_id=row["id"], document_ids=[document_id])

    async def on_progress(done: int, total: int) -> None:
        await tracker.set_overall(done, total, stage="crawl")

    crawler = crawl.Crawler(options)
    report = await crawler.crawl(on_page, on_progress)
    return {**report.summary(), **counts.as_dict()}


async def sync_repository(ctx: AppContext, row: dict[str, Any], tracker: Tracker) -> dict[str, Any]:
    """A `git` job: index the checkout's files, then drop the ones that disappeared."""
    payload = row["payload"]
    settings = ctx.settings
    exclude = payload.get("exclude")
    options = git.GitOptions(
        url=payload["url"],
        ref=payload.get("ref"),
        include=tuple(payload.get("include") or ()),
        exclude=tuple(exclude) if exclude is not None else git.DEFAULT_EXCLUDE,
        max_file_bytes=settings.git_max_file_bytes,
        max_files=settings.git_max_files,
        timeout_seconds=settings.git_timeout_seconds,
        allow_file=bool(payload.get("allow_file")),
        allowed_networks=parse_networks(settings.crawl_allow_private_networks),
    )
    await tracker.advance("clone", total=1)
    checkout = await git.checkout_repository(options)
    await tracker.advance("clone", done=1)
    counts = _Counts()
    tags = list(payload.get("tags") or [])
    current: set[str] = set()
    total = len(checkout.files)
    for number, file in enumerate(checkout.files):
        uri = git.source_uri(options.url, file.path)
        current.add(uri)
        item = _file_item(row, options, checkout, file, uri=uri, tags=tags)
        try:
            document_id, outcome = await upsert_source_document(ctx, item=item, progress=tracker)
        except ExtractionError as exc:
            checkout.skipped[file.path] = str(exc)
        else:
            counts.add(outcome)
            async with ctx.db.connection() as conn:
                await repository.add_job_documents(
                    conn, job_id=row["id"], document_ids=[document_id]
                )
        await tracker.set_overall(number + 1, total, stage="files")
    removed = await _remove_vanished(
        ctx, row["project_id"], git.source_prefix(options.url), current
    )
    return {
        "commit": checkout.commit,
        "files": total,
        **counts.as_dict(),
        "removed": removed,
        "skipped": dict(list(checkout.skipped.items())[:100]),
    }


async def _remove_vanished(
    ctx: AppContext, project_id: UUID, prefix: str, current: set[str]
) -> int:
    """Delete the repository's documents whose files are gone (or no longer selected)."""
    async with ctx.db.transaction() as conn:
        return await documents.delete_vanished(
            conn, project_id=project_id, source_prefix=prefix, keep=current
        )


def _file_item(
    row: dict[str, Any],
    options: git.GitOptions,
    checkout: git.Checkout,
    file: git.RepoFile,
    *,
    uri: str,
    tags: list[str],
) -> SourceDocument:
    file_type = file.file_type
    as_text = file_type.format in TEXT_AS_IS
    meta = {"source": file.path, "repository": options.url, "path": file.path}
    return SourceDocument(
        project_id=row["project_id"],
        source_uri=uri,
        name=file.path,
        type=file_type.format,
        source=Source(
            format=file_type.format,
            data=None if as_text else file.data,
            text=file_type.text if as_text else None,
            language=file_type.language,
            meta=meta,
        ),
        content_hash=sha256(file.data),
        size_bytes=len(file.data),
        mime_type=file_type.mime_type,
        tags=tags,
        metadata={
            "repository": options.url,
            "path": file.path,
            "ref": options.ref,
            "commit": checkout.commit,
        },
        created_by=row["created_by"],
    )
