"""/sources: a project's crawl and git sources — list, read, sync now, change, delete."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter

from lorebase.api.deps import ContextDep, IngestRateLimit, Page, PaginationDep, PrincipalDep
from lorebase.knowledge import sources_service as service
from lorebase.knowledge.schemas import JobAccepted
from lorebase.knowledge.source_schemas import SourceRead, SourceUpdate

router = APIRouter(tags=["sources"])

_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "Your role (viewer) or API key scope does not allow write."}
}


@router.get("/projects/{project_id}/sources", response_model=Page[SourceRead])
async def list_sources(
    ctx: ContextDep, principal: PrincipalDep, page: PaginationDep, project_id: UUID
) -> Page[SourceRead]:
    """The project's crawl and git sources: settings, status, last and next sync, documents."""
    items, total = await service.list_sources(
        ctx=ctx, principal=principal, project_id=project_id, skip=page.skip, limit=page.limit
    )
    return Page(items=items, total=total, skip=page.skip, limit=page.limit)


@router.get("/sources/{source_id}", response_model=SourceRead)
async def get_source(ctx: ContextDep, principal: PrincipalDep, source_id: UUID) -> SourceRead:
    return await service.get_source(ctx=ctx, principal=principal, source_id=source_id)


@router.post(
    "/sources/{source_id}/sync",
    status_code=202,
    response_model=JobAccepted,
    responses={
        **_FORBIDDEN,
        409: {"description": "A sync of this source is queued or running, or it is deleted."},
    },
)
async def sync_source(
    ctx: ContextDep, principal: PrincipalDep, _limit: IngestRateLimit, source_id: UUID
) -> JobAccepted:
    """Sync the source now (a job: poll `GET /jobs/{job_id}`); one sync at a time."""
    return await service.sync_source(ctx=ctx, principal=principal, source_id=source_id)


@router.put(
    "/sources/{source_id}",
    response_model=SourceRead,
    responses={**_FORBIDDEN, 409: {"description": "The source is being deleted."}},
)
async def update_source(
    ctx: ContextDep, principal: PrincipalDep, source_id: UUID, body: SourceUpdate
) -> SourceRead:
    """Change the schedule (`sync_interval_seconds`, null: on request only), tags or options;
    they apply from the next sync."""
    return await service.update_source(ctx=ctx, principal=principal, source_id=source_id, data=body)


@router.delete(
    "/sources/{source_id}",
    status_code=202,
    response_model=JobAccepted,
    responses={**_FORBIDDEN, 409: {"description": "The source is already being deleted."}},
)
async def delete_source(ctx: ContextDep, principal: PrincipalDep, source_id: UUID) -> JobAccepted:
    """Delete the source with its documents, their versions and chunks, in one job (status
    `deleting` meanwhile; a sync under way is cancelled first)."""
    return await service.delete_source(ctx=ctx, principal=principal, source_id=source_id)
