"""The administrators' overview of ingestion: queue depth, jobs failed in the last day (with
the error in words), and the embedding model and space of each project's knowledge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel

from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.errors import Forbidden
from lorebase.knowledge import overview_repository as repository

FAILED_WINDOW_HOURS = 24


class QueueDepth(BaseModel):
    queued: int
    running: int
    oldest_queued_at: datetime | None = None


class FailedJob(BaseModel):
    id: UUID
    project_id: UUID
    project_name: str
    kind: str
    error: str | None
    url: str | None = None
    finished_at: datetime | None
    retried_as: UUID | None = None


class StoredSpace(BaseModel):
    embedding_model: str
    embedding_dim: int
    items: int
    documents: int


class ProjectOverview(BaseModel):
    id: UUID
    name: str
    status: Literal["active", "archived"]
    embedding_model: str | None
    embedding_dim: int | None
    # The stored chunks by space; more than one while a re-embedding is under way.
    stored: list[StoredSpace]
    matches_configured: bool | None
    queued: int
    running: int
    failed: int


class Embedder(BaseModel):
    model: str
    dimension: int


class AdminOverview(BaseModel):
    queue: QueueDepth
    failed_window_hours: int
    failed_total: int
    failed: list[FailedJob]
    embedder: Embedder
    projects_total: int
    projects: list[ProjectOverview]


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin or "admin" not in principal.scopes:
        raise Forbidden("only administrators can see the overview")


async def admin_overview(
    *,
    ctx: AppContext,
    principal: Principal,
    failed_limit: int = 50,
    project_limit: int = 200,
) -> AdminOverview:
    """Administrators only (an API key needs the admin scope)."""
    _require_admin(principal)
    hours = FAILED_WINDOW_HOURS
    async with ctx.db.connection() as conn:
        queue = await repository.queue_depth(conn)
        failed, failed_total = await repository.recent_failures(
            conn, hours=hours, limit=failed_limit
        )
        projects, projects_total = await repository.projects_with_jobs(
            conn, hours=hours, limit=project_limit
        )
        spaces = await repository.stored_spaces(conn, project_ids=[p["id"] for p in projects])
    embedder = Embedder(model=ctx.embedder.model_id, dimension=ctx.embedder.dimension)
    stored: dict[UUID, list[StoredSpace]] = {}
    for row in spaces:
        stored.setdefault(row["project_id"], []).append(StoredSpace(**row))
    return AdminOverview(
        queue=QueueDepth(**queue),
        failed_window_hours=hours,
        failed_total=failed_total,
        failed=[FailedJob(**row) for row in failed],
        embedder=embedder,
        projects_total=projects_total,
        projects=[_project(row, stored.get(row["id"], []), embedder) for row in projects],
    )


def _project(
    row: dict[str, object], stored: list[StoredSpace], embedder: Embedder
) -> ProjectOverview:
    model, dim = row["embedding_model"], row["embedding_dim"]
    matches = None if model is None else (model, dim) == (embedder.model, embedder.dimension)
    return ProjectOverview.model_validate({**row, "stored": stored, "matches_configured": matches})
