"""/jobs: ingestion job status with per-stage progress, cancellation and retry."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from lorebase.api.deps import ContextDep, Page, PaginationDep, PrincipalDep
from lorebase.knowledge import retry, service
from lorebase.knowledge.schemas import JobFilter, JobKind, JobRead, JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])


@router.get("", response_model=Page[JobRead])
async def list_jobs(
    ctx: ContextDep,
    principal: PrincipalDep,
    page: PaginationDep,
    project_id: UUID | None = None,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
) -> Page[JobRead]:
    """Jobs, newest first: one project's, or (without `project_id`) those of every project
    the caller can read."""
    return await service.list_jobs(
        ctx=ctx,
        principal=principal,
        project_id=project_id,
        filters=JobFilter(status=status, kind=kind),
        page=page,
    )


@router.get("/{job_id}", response_model=JobRead)
async def get_job(ctx: ContextDep, principal: PrincipalDep, job_id: UUID) -> JobRead:
    """Status, progress (`progress.stages`: extract, chunk, embed, store; crawl; files),
    error and the documents the job produced."""
    return await service.get_job(ctx=ctx, principal=principal, job_id=job_id)


@router.post("/{job_id}/cancel", response_model=JobRead)
async def cancel_job(ctx: ContextDep, principal: PrincipalDep, job_id: UUID) -> JobRead:
    """A queued job is cancelled at once, a running one at its next checkpoint; 409 when it
    already finished."""
    return await service.cancel_job(ctx=ctx, principal=principal, job_id=job_id)


@router.post("/{job_id}/retry", status_code=202, response_model=JobRead)
async def retry_job(ctx: ContextDep, principal: PrincipalDep, job_id: UUID) -> JobRead:
    """Queue a failed or cancelled job again as a new job (`retry_of` names the old one,
    which gets `retried_as`); retrying it twice returns the same new job. 409 for a job that
    is queued, running or succeeded, or an upload whose document has a newer version."""
    return await retry.retry_job(ctx=ctx, principal=principal, job_id=job_id)
