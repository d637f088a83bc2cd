"""Sources as a resource: list, read, sync on request, change (options, schedule), delete.

A source is the crawl or git origin of some documents (registered by `POST /knowledge/crawl`
and `/knowledge/git`). Every job about a source (its syncs, its deletion) carries its id, and
the queue runs them one at a time (`enqueue.create_job`); a sync asked for while one is queued
or running is a 409.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.db import Conn
from lorebase.errors import Conflict, Invalid, NotFound
from lorebase.knowledge import repository, sources_repository
from lorebase.knowledge.enqueue import create_job
from lorebase.knowledge.schemas import JobAccepted
from lorebase.knowledge.source_schemas import (
    CRAWL_OPTIONS,
    GIT_OPTIONS,
    SourceRead,
    SourceUpdate,
)
from lorebase.projects.service import get_project_for, row_in_project

_NOT_NULL = ("tags", "max_depth", "respect_robots_txt", "discover")


async def _source_for(
    conn: Conn, *, principal: Principal, source_id: UUID, permission: Permission, lock: bool
) -> dict[str, Any]:
    """The source if the caller holds `permission` on its project: 404 word for word the
    same for a source that does not exist and one the caller may not see."""
    row = await row_in_project(
        conn,
        await sources_repository.get_source(conn, source_id=source_id),
        principal=principal,
        permission=permission,
        missing=NotFound("source not found"),
    )
    if not lock:
        return row
    locked = await sources_repository.lock_source(conn, source_id=source_id)
    if locked is None:
        raise NotFound("source not found")  # deleted meanwhile
    return locked


async def _claim_source(
    conn: Conn, *, principal: Principal, source_id: UUID
) -> tuple[dict[str, Any], UUID | None]:
    """The source, locked for a write the caller may make (409 while it is being deleted),
    and the id of its job queued or running, if any."""
    row = await _source_for(
        conn, principal=principal, source_id=source_id, permission=Permission.WRITE, lock=True
    )
    _refuse_if_deleting(row)
    active = await sources_repository.active_job(
        conn, project_id=row["project_id"], source_id=source_id
    )
    return row, active


async def _read(conn: Conn, source_id: UUID) -> SourceRead:
    row = await sources_repository.get_counted_source(conn, source_id=source_id)
    if row is None:
        raise NotFound("source not found")
    return SourceRead.from_row(row)


async def list_sources(
    *, ctx: AppContext, principal: Principal, project_id: UUID, skip: int = 0, limit: int = 50
) -> tuple[list[SourceRead], int]:
    """A project's crawl and git sources, oldest first, with their sync state."""
    async with ctx.db.connection() as conn:
        await get_project_for(
            conn, principal=principal, project_id=project_id, permission=Permission.READ
        )
        rows, total = await sources_repository.list_sources(
            conn, project_id=project_id, skip=skip, limit=limit
        )
    return [SourceRead.from_row(row) for row in rows], total


async def get_source(*, ctx: AppContext, principal: Principal, source_id: UUID) -> SourceRead:
    """One source: settings, status, last and next sync, document counts."""
    async with ctx.db.connection() as conn:
        await _source_for(
            conn, principal=principal, source_id=source_id, permission=Permission.READ, lock=False
        )
        return await _read(conn, source_id)


def _refuse_if_deleting(row: dict[str, Any]) -> None:
    if row["status"] == "deleting":
        raise Conflict("the source is being deleted")


async def queue_sync(conn: Conn, *, source: dict[str, Any], created_by: UUID | None) -> UUID:
    """Queue a sync of `source` with its settings (caller's transaction, source row locked)."""
    job = await create_job(
        conn,
        project_id=source["project_id"],
        kind=source["kind"],
        payload={**(source["settings"] or {}), "source_id": str(source["id"])},
        created_by=created_by,
    )
    await sources_repository.mark_queued(conn, source_id=source["id"], job_id=job["id"])
    job_id: UUID = job["id"]
    return job_id


async def sync_source(*, ctx: AppContext, principal: Principal, source_id: UUID) -> JobAccepted:
    """Queue a sync now; 409 while one is queued or running (one run at a time per source)."""
    async with ctx.db.transaction() as conn:
        row, active = await _claim_source(conn, principal=principal, source_id=source_id)
        if active is not None:
            raise Conflict(f"a sync of this source is already queued or running (job {active})")
        job_id = await queue_sync(conn, source=row, created_by=principal.user_id)
    return JobAccepted(job_id=job_id, status="queued")


def _invalid(field: str, message: str) -> Invalid:
    return Invalid(message, errors=[{"loc": ["body", field], "field": field, "msg": message}])


def _changes(ctx: AppContext, kind: str, data: SourceUpdate) -> dict[str, Any]:
    """The fields sent, checked against the source's kind and the server's limits."""
    changes = data.model_dump(exclude_unset=True)
    for field in _NOT_NULL:
        if field in changes and changes[field] is None:
            raise _invalid(field, f"{field} cannot be null")
    foreign = sorted((GIT_OPTIONS if kind == "crawl" else CRAWL_OPTIONS) & set(changes))
    if foreign:
        raise _invalid(foreign[0], f"{foreign[0]} does not apply to a {kind} source")
    interval = changes.get("sync_interval_seconds")
    minimum = ctx.settings.source_min_sync_interval_seconds
    if interval is not None and interval < minimum:
        raise _invalid("sync_interval_seconds", f"sync_interval_seconds must be at least {minimum}")
    if changes.get("max_depth", 0) > ctx.settings.crawl_max_depth:
        raise _invalid("max_depth", f"max_depth may be at most {ctx.settings.crawl_max_depth}")
    if "max_pages" in changes and changes["max_pages"] is None:
        changes["max_pages"] = ctx.settings.crawl_max_pages
    return changes


async def update_source(
    *, ctx: AppContext, principal: Principal, source_id: UUID, data: SourceUpdate
) -> SourceRead:
    """Change a source's options or schedule (the next sync is due one interval after the
    last); the options apply from its next sync."""
    async with ctx.db.transaction() as conn:
        row = await _source_for(
            conn, principal=principal, source_id=source_id, permission=Permission.WRITE, lock=True
        )
        _refuse_if_deleting(row)
        changes = _changes(ctx, row["kind"], data)
        interval = changes.pop("sync_interval_seconds", row["sync_interval_seconds"])
        await sources_repository.update_source(
            conn,
            source_id=source_id,
            settings={**(row["settings"] or {}), **changes},
            interval=interval,
        )
        return await _read(conn, source_id)


async def delete_source(*, ctx: AppContext, principal: Principal, source_id: UUID) -> JobAccepted:
    """Queue the source's deletion (its documents, their versions and chunks, then itself, in
    one transaction); a sync under way is cancelled first. Status `deleting` meanwhile."""
    async with ctx.db.transaction() as conn:
        row, active = await _claim_source(conn, principal=principal, source_id=source_id)
        if active is not None:
            await repository.request_cancel(conn, job_id=active)
        job = await create_job(
            conn,
            project_id=row["project_id"],
            kind="source_delete",
            payload={"source_id": str(source_id)},
            created_by=principal.user_id,
        )
        await sources_repository.mark_deleting(conn, source_id=source_id, job_id=job["id"])
    return JobAccepted(job_id=job["id"], status=job["status"])
