"""Ingestion: uploads, texts, crawls and git syncs become documents and durable jobs."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.documents.schemas import DocumentRead
from lorebase.errors import Conflict, Invalid, PayloadTooLarge, UnsupportedMediaType
from lorebase.knowledge import repository, source_jobs, sources_repository
from lorebase.knowledge.detect import UnsupportedFile
from lorebase.knowledge.enqueue import create_job
from lorebase.knowledge.job_access import job_for
from lorebase.knowledge.pipeline import fail_version
from lorebase.knowledge.schemas import (
    CrawlCreate,
    GitCreate,
    IngestAccepted,
    JobAccepted,
    JobFilter,
    JobRead,
    TextIngest,
)
from lorebase.knowledge.sources import git
from lorebase.knowledge.sources.links import normalize_url
from lorebase.knowledge.sources.netguard import BlockedAddress, check_url, parse_networks
from lorebase.knowledge.sources.upload import (
    Accepted,
    Incoming,
    UploadedFile,
    accept,
    inspect_files,
    text_file,
)
from lorebase.paging import Page, PageRequest
from lorebase.projects.service import get_project_for

MAX_FILES_PER_UPLOAD = 100

__all__ = [
    "UploadedFile",
    "cancel_job",
    "get_job",
    "ingest_text",
    "list_jobs",
    "submit_crawl",
    "submit_git",
    "upload_files",
]


def _accepted(result: Accepted) -> IngestAccepted:
    document = DocumentRead(**result.document, job_id=result.job_id)
    return IngestAccepted(
        document_id=document.id,
        job_id=result.job_id,
        status="queued" if result.job_id else document.status,
        duplicate=result.duplicate,
        name=document.name,
        version=document.version,
        document=document,
    )


async def _accept_all(
    ctx: AppContext,
    *,
    principal: Principal,
    project_id: UUID,
    items: list[Incoming],
    tags: list[str],
    kind: str,
) -> list[IngestAccepted]:
    assert kind in ("upload", "text")
    results: list[IngestAccepted] = []
    async with ctx.db.transaction() as conn:
        await get_project_for(
            conn, principal=principal, project_id=project_id, permission=Permission.WRITE
        )
        for item in items:
            accepted = await accept(
                conn,
                project_id=project_id,
                item=item,
                tags=tags,
                kind="upload" if kind == "upload" else "text",
                created_by=principal.user_id,
            )
            results.append(_accepted(accepted))
    return results


async def upload_files(
    *,
    ctx: AppContext,
    principal: Principal,
    project_id: UUID,
    files: list[UploadedFile],
    tags: list[str] | None = None,
) -> list[IngestAccepted]:
    """Store each file as a document (or a new version of the same-named one) and queue its
    indexing, all in one transaction; identical content already present gets no job.
    Every file is checked first (413 too large, 415 unsupported or lying about its type),
    so a bad file rejects the whole request and nothing is half-written."""
    if not files:
        raise Invalid("at least one file is required", errors=[{"field": "file"}])
    if len(files) > MAX_FILES_PER_UPLOAD:
        raise Invalid(
            f"at most {MAX_FILES_PER_UPLOAD} files per request", errors=[{"field": "file"}]
        )
    limit = ctx.settings.max_upload_bytes
    for file in files:
        if len(file.data) > limit:
            raise PayloadTooLarge(
                f"{file.name} is {len(file.data)} bytes; the limit is {limit} (MAX_UPLOAD_BYTES)",
                errors=[{"field": "file", "name": file.name, "msg": "too large"}],
            )
    # Permission first: a stranger learns nothing about file handling.
    await get_project_for(
        ctx.db, principal=principal, project_id=project_id, permission=Permission.WRITE
    )
    try:
        items = await inspect_files(files)
    except UnsupportedFile as exc:
        raise UnsupportedMediaType(str(exc), errors=[{"field": "file", "msg": str(exc)}]) from None
    return await _accept_all(
        ctx, principal=principal, project_id=project_id, items=items, tags=tags or [], kind="upload"
    )


async def ingest_text(
    *,
    ctx: AppContext,
    principal: Principal,
    project_id: UUID,
    name: str,
    text: str,
    tags: list[str] | None = None,
) -> IngestAccepted:
    """Index a text as a document named `name` (Markdown unless the name's extension says
    otherwise); same dedup and versioning rules as uploads. Returns {document_id, job_id,
    status, ...}."""
    data = TextIngest(project_id=project_id, name=name, text=text, tags=tags or [])
    if len(text.encode()) > ctx.settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"the text is larger than {ctx.settings.max_upload_bytes} bytes",
            errors=[{"field": "text", "msg": "too large"}],
        )
    await get_project_for(
        ctx.db, principal=principal, project_id=project_id, permission=Permission.WRITE
    )
    try:
        item = text_file(data.name, data.text)
    except UnsupportedFile as exc:
        raise UnsupportedMediaType(str(exc), errors=[{"field": "name", "msg": str(exc)}]) from None
    (result,) = await _accept_all(
        ctx, principal=principal, project_id=project_id, items=[item], tags=data.tags, kind="text"
    )
    return result


async def _check_destination(ctx: AppContext, *, url: str, field: str) -> None:
    try:
        await check_url(url, parse_networks(ctx.settings.crawl_allow_private_networks))
    except BlockedAddress as exc:
        raise Invalid(str(exc), errors=[{"field": field, "msg": str(exc)}]) from None


async def submit_crawl(*, ctx: AppContext, principal: Principal, data: CrawlCreate) -> JobAccepted:
    """Queue a crawl; a URL that is (or resolves to) a private address is a 422 now."""
    url = normalize_url(data.url)
    if url is None:
        raise Invalid(
            "url must be an absolute http(s) URL", errors=[{"field": "url", "msg": "invalid"}]
        )
    if data.max_depth > ctx.settings.crawl_max_depth:
        raise Invalid(
            f"max_depth may be at most {ctx.settings.crawl_max_depth}",
            errors=[{"field": "max_depth", "msg": "too deep"}],
        )
    await get_project_for(
        ctx.db, principal=principal, project_id=data.project_id, permission=Permission.WRITE
    )
    await _check_destination(ctx, url=url, field="url")
    overrides = {"url": url, "max_pages": data.max_pages or ctx.settings.crawl_max_pages}
    return await _submit_source(
        ctx, principal=principal, kind="crawl", data=data, uri=url, overrides=overrides
    )


async def submit_git(*, ctx: AppContext, principal: Principal, data: GitCreate) -> JobAccepted:
    """Queue a repository sync (clone at `ref`, index, and drop files that disappeared)."""
    try:
        kind = git.url_kind(data.url)
    except git.GitError as exc:
        raise Invalid(str(exc), errors=[{"field": "url", "msg": str(exc)}]) from None
    if kind == "file" and not (ctx.settings.git_allow_file_urls or principal.is_admin):
        raise Invalid(
            "file:// repositories need an admin or GIT_ALLOW_FILE_URLS=true",
            errors=[{"field": "url", "msg": "file URLs not allowed"}],
        )
    await get_project_for(
        ctx.db, principal=principal, project_id=data.project_id, permission=Permission.WRITE
    )
    host = git.url_host(data.url)
    if kind != "file" and host:
        await _check_destination(ctx, url=f"https://{host}/", field="url")
    uri = data.url if data.ref is None else f"{data.url}#{data.ref}"
    overrides = {"allow_file": kind == "file"}
    return await _submit_source(
        ctx, principal=principal, kind="git", data=data, uri=uri, overrides=overrides
    )


async def _submit_source(
    ctx: AppContext,
    *,
    principal: Principal,
    kind: str,
    data: CrawlCreate | GitCreate,
    uri: str,
    overrides: dict[str, Any],
) -> JobAccepted:
    """Register (or update) the project's source for `uri` and queue its sync, in one
    transaction: the job's payload names the source, so a re-sync can be incremental. The
    source's settings are `data` (less its project) with `overrides`."""
    project_id = data.project_id
    payload = {**data.model_dump(mode="json", exclude={"project_id"}), **overrides}
    async with ctx.db.transaction() as conn:
        source = await sources_repository.upsert_source(
            conn,
            project_id=project_id,
            kind=kind,
            uri=uri,
            settings=payload,
            created_by=principal.user_id,
        )
        if source["status"] == "deleting":
            raise Conflict("this source is being deleted; submit it again once that job is done")
        row = await create_job(
            conn,
            project_id=project_id,
            kind=kind,
            payload={**payload, "source_id": str(source["id"])},
            created_by=principal.user_id,
        )
        await sources_repository.mark_queued(conn, source_id=source["id"], job_id=row["id"])
    return JobAccepted(job_id=row["id"], status=row["status"])


async def get_job(*, ctx: AppContext, principal: Principal, job_id: UUID) -> JobRead:
    """A job with its per-stage progress (404 unless the caller can read its project)."""
    async with ctx.db.connection() as conn:
        row = await job_for(conn, principal=principal, job_id=job_id, permission=Permission.READ)
    return JobRead.from_row(row)


async def list_jobs(
    *,
    ctx: AppContext,
    principal: Principal,
    project_id: UUID | None,
    filters: JobFilter,
    page: PageRequest,
) -> Page[JobRead]:
    """A project's jobs, or (no `project_id`) those of every project the caller can read,
    newest first."""
    async with ctx.db.connection() as conn:
        if project_id is not None:
            await get_project_for(
                conn, principal=principal, project_id=project_id, permission=Permission.READ
            )
        rows, total = await repository.list_jobs(
            conn,
            project_id=project_id or principal.project_id,
            member=None if project_id is not None or principal.is_admin else principal.user_id,
            filters=filters,
            page=page,
        )
    items = [JobRead.from_row(row) for row in rows]
    return Page[JobRead](items=items, total=total, skip=page.skip, limit=page.limit)


async def cancel_job(*, ctx: AppContext, principal: Principal, job_id: UUID) -> JobRead:
    """Cancel a queued job now, or a running one at its next checkpoint (409 if finished)."""
    async with ctx.db.transaction() as conn:
        row = await job_for(conn, principal=principal, job_id=job_id, permission=Permission.WRITE)
        if row["status"] in ("succeeded", "failed"):
            raise Conflict(f"the job already {row['status']}")
        updated = await repository.request_cancel(conn, job_id=job_id)
        if updated is not None and updated["status"] == "cancelled":
            await source_jobs.job_ended(conn, updated, "cancelled", "cancelled on request")
    job = JobRead.from_row(updated or row)
    payload = row["payload"] or {}
    if job.status == "cancelled" and "version_id" in payload:
        # Cancelled before a worker took it: the document will not be indexed.
        await fail_version(
            ctx,
            document_id=UUID(payload["document_id"]),
            version_id=UUID(payload["version_id"]),
            message="indexing was cancelled",
        )
    return job
