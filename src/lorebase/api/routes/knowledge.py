"""/knowledge: uploads, texts, web crawls and git repositories, each indexed by durable jobs."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request, Response
from starlette.datastructures import FormData, UploadFile

from lorebase.api.deps import ContextDep, IngestRateLimit, PrincipalDep
from lorebase.api.uploads import close_form, parse_upload_form
from lorebase.errors import Invalid
from lorebase.knowledge import service
from lorebase.knowledge.schemas import (
    CrawlCreate,
    GitCreate,
    IngestAccepted,
    JobAccepted,
    TextIngest,
)
from lorebase.text import REASON, clean_tags, has_forbidden

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
    413: {
        "description": "A file is larger than MAX_UPLOAD_BYTES, or the request than "
        "MAX_UPLOAD_REQUEST_BYTES."
    },
    415: {"description": "A file's type is unsupported or its content contradicts its name."},
}


_UPLOAD_BODY: dict[str, object] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "project_id"],
                    "properties": {
                        "file": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more files (repeat the field).",
                        },
                        "project_id": {"type": "string", "format": "uuid"},
                        "tags": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Repeat the field or comma-separate.",
                        },
                    },
                }
            }
        },
    }
}


def _split_tags(values: list[str]) -> list[str]:
    tags: list[str] = []
    for value in values:
        if has_forbidden(value):
            raise Invalid(
                f"invalid request: tags {REASON}",
                errors=[{"loc": ["body", "tags"], "field": "tags", "msg": REASON}],
            )
        tags.extend(part.strip() for part in value.split(",") if part.strip())
    try:
        return clean_tags(tags)
    except ValueError as exc:
        raise Invalid(
            f"invalid request: {exc}",
            errors=[{"loc": ["body", "tags"], "field": "tags", "msg": str(exc)}],
        ) from None


def _project_id(form: FormData) -> UUID:
    raw = form.get("project_id")
    try:
        return UUID(raw) if isinstance(raw, str) else _missing("project_id")
    except ValueError:
        raise Invalid(
            "invalid request: project_id is not a UUID",
            errors=[{"loc": ["body", "project_id"], "field": "project_id", "msg": "not a UUID"}],
        ) from None


def _missing(field: str) -> UUID:
    raise Invalid(
        f"invalid request: {field} is required",
        errors=[{"loc": ["body", field], "field": field, "msg": "Field required"}],
    )


async def _files_of(form: FormData) -> list[service.UploadedFile]:
    uploads = [item for item in form.getlist("file") if isinstance(item, UploadFile)]
    if not uploads:
        _missing("file")
    return [
        service.UploadedFile(
            name=upload.filename or "upload",
            data=await upload.read(),
            content_type=upload.content_type,
        )
        for upload in uploads
    ]


@router.post(
    "/upload",
    status_code=202,
    response_model=IngestAccepted | list[IngestAccepted],
    responses=_UPLOAD_RESPONSES,
    openapi_extra=_UPLOAD_BODY,
)
async def upload(
    request: Request,
    ctx: ContextDep,
    principal: PrincipalDep,
    _limit: IngestRateLimit,
    response: Response,
) -> IngestAccepted | list[IngestAccepted]:
    """Upload files (Markdown, text, HTML, PDF, DOCX, source code, JSON, YAML, CSV). Each
    becomes a document, or the next minor version of the same-named one, indexed by a job.
    Files stream into the data dir and stop at MAX_UPLOAD_BYTES each."""
    settings = ctx.settings
    form = await parse_upload_form(
        request,
        directory=settings.lorebase_data_dir / "uploads",
        max_file_bytes=settings.max_upload_bytes,
        max_files=settings.max_upload_files,
    )
    try:
        project_id = _project_id(form)
        tags = _split_tags([value for value in form.getlist("tags") if isinstance(value, str)])
        files = await _files_of(form)
    finally:
        await close_form(form)
    results = await service.upload_files(
        ctx=ctx, principal=principal, project_id=project_id, files=files, tags=tags
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
