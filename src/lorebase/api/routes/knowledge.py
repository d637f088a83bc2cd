"""/knowledge: uploads, texts, web crawls and git repositories, each indexed by durable jobs."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, File, Form, Response, UploadFile

from lorebase.api.deps import ContextDep, IngestRateLimit, PrincipalDep
from lorebase.errors import PayloadTooLarge
from lorebase.knowledge import service
from lorebase.knowledge.schemas import (
    CrawlCreate,
    GitCreate,
    IngestAccepted,
    JobAccepted,
    TextIngest,
)

router = APIRouter(prefix="/knowledge", tags=["knowledge"])

_UPLOAD_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "Every file's content already exists in the project: the existing "
        "documents, no job (`job_id` null, `duplicate` true).",
        "model": IngestAccepted | list[IngestAccepted],
    },
    202: {
        "description": "Accepted: one object for one file, a list (in request order) for "
        "several. Poll `GET /jobs/{job_id}`.",
        "model": IngestAccepted | list[IngestAccepted],
    },
    413: {"description": "A file is larger than MAX_UPLOAD_BYTES."},
    415: {"description": "A file's type is unsupported or its content contradicts its name."},
}


def _split_tags(values: list[str] | None) -> list[str]:
    tags: list[str] = []
    for value in values or []:
        tags.extend(part.strip() for part in value.split(",") if part.strip())
    return tags


async def _read(upload: UploadFile, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLarge(
            f"{upload.filename} is {upload.size} bytes; the limit is {limit} (MAX_UPLOAD_BYTES)",
            errors=[{"field": "file", "name": upload.filename, "msg": "too large"}],
        )
    return await upload.read(limit + 1)


@router.post(
    "/upload",
    status_code=202,
    response_model=IngestAccepted | list[IngestAccepted],
    responses=_UPLOAD_RESPONSES,
)
async def upload(
    ctx: ContextDep,
    principal: PrincipalDep,
    _limit: IngestRateLimit,
    response: Response,
    file: Annotated[list[UploadFile], File(description="One or more files.")],
    project_id: Annotated[UUID, Form()],
    tags: Annotated[
        list[str] | None, Form(description="Repeat the field or comma-separate.")
    ] = None,
) -> IngestAccepted | list[IngestAccepted]:
    """Upload files (Markdown, text, HTML, PDF, DOCX, source code, JSON, YAML, CSV). Each
    becomes a document, or the next minor version of the same-named one, indexed by a job."""
    limit = ctx.settings.max_upload_bytes
    files = [
        service.UploadedFile(
            name=upload.filename or "upload",
            data=await _read(upload, limit),
            content_type=upload.content_type,
        )
        for upload in file
    ]
    results = await service.upload_files(
        ctx=ctx, principal=principal, project_id=project_id, files=files, tags=_split_tags(tags)
    )
    if all(result.job_id is None for result in results):
        response.status_code = 200
    return results[0] if len(results) == 1 else results


@router.post(
    "/text",
    status_code=202,
    response_model=IngestAccepted,
    responses={200: {"description": "Identical content exists: that document, no job."}},
)
async def ingest_text(
    ctx: ContextDep,
    principal: PrincipalDep,
    _limit: IngestRateLimit,
    response: Response,
    body: TextIngest,
) -> IngestAccepted:
    """Index a text as a document named `name` (the MCP `ingest_text` tool does the same)."""
    result = await service.ingest_text(
        ctx=ctx,
        principal=principal,
        project_id=body.project_id,
        name=body.name,
        text=body.text,
        tags=body.tags,
    )
    if result.job_id is None:
        response.status_code = 200
    return result


@router.post("/crawl", status_code=202, response_model=JobAccepted)
async def crawl(
    ctx: ContextDep, principal: PrincipalDep, _limit: IngestRateLimit, body: CrawlCreate
) -> JobAccepted:
    """Crawl a site into `web` documents (robots.txt, sitemap.xml, llms.txt, same site only).
    A URL that is or resolves to a private address is refused (422)."""
    return await service.submit_crawl(ctx=ctx, principal=principal, data=body)


@router.post("/git", status_code=202, response_model=JobAccepted)
async def sync_git(
    ctx: ContextDep, principal: PrincipalDep, _limit: IngestRateLimit, body: GitCreate
) -> JobAccepted:
    """Index a git repository at `ref`; syncing again adds, updates and removes files."""
    return await service.submit_git(ctx=ctx, principal=principal, data=body)
