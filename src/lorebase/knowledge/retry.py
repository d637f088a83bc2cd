"""Run a failed or cancelled job again, server-side.

A retry is a new job (a new row and queue entry, committed together) with the old one's kind
and payload; the old job records `retried_as`, so it survives restarts like any job, and a
second retry of the same job returns the job the first one queued instead of a duplicate."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.db import Conn
from lorebase.documents import indexing as documents
from lorebase.errors import Conflict, Invalid
from lorebase.knowledge import repository
from lorebase.knowledge.enqueue import create_job
from lorebase.knowledge.job_access import job_for
from lorebase.knowledge.schemas import JobRead

RETRYABLE = ("failed", "cancelled")
# What a run wrote into the payload (progress, outcome, links between runs): not the work.
_RUN_KEYS = ("stages", "result", "retried_as", "retry_of")


async def retry_job(*, ctx: AppContext, principal: Principal, job_id: UUID) -> JobRead:
    """Queue a failed or cancelled job again (editors of its project); 409 for any other
    status, the already queued retry when it was retried before."""
    async with ctx.db.transaction() as conn:
        row = await job_for(
            conn, principal=principal, job_id=job_id, permission=Permission.WRITE, lock=True
        )
        payload: dict[str, Any] = dict(row["payload"] or {})
        if payload.get("retried_as"):
            again = await repository.get_job(conn, job_id=UUID(payload["retried_as"]))
            if again is not None:
                return JobRead.from_row(again)
        if row["status"] not in RETRYABLE:
            raise Conflict(
                f"only a failed or cancelled job can be retried; this one is {row['status']}"
            )
        _check_allowed(ctx, principal, row["kind"], payload)
        work = {k: v for k, v in payload.items() if k not in _RUN_KEYS}
        document_ids: list[UUID] = []
        if "version_id" in work:
            document_ids = [await _requeue_version(conn, work)]
        new = await create_job(
            conn,
            project_id=row["project_id"],
            kind=row["kind"],
            payload={**work, "retry_of": str(job_id)},
            document_ids=document_ids,
            created_by=principal.user_id,
        )
        await repository.mark_retried(conn, job_id=job_id, retried_as=new["id"])
    return JobRead.from_row(new)


def _check_allowed(
    ctx: AppContext, principal: Principal, kind: str, payload: dict[str, Any]
) -> None:
    """The retrying caller must be allowed what the job does (a file:// repository)."""
    allowed = ctx.settings.git_allow_file_urls or principal.is_admin
    if kind == "git" and payload.get("allow_file") and not allowed:
        raise Invalid(
            "file:// repositories need an admin or GIT_ALLOW_FILE_URLS=true",
            errors=[{"field": "url", "msg": "file URLs not allowed"}],
        )


async def _requeue_version(conn: Conn, work: dict[str, Any]) -> UUID:
    """An indexing job: its version must still be the document's latest; the document shows
    `pending` again until the new job runs."""
    document_id = UUID(work["document_id"])
    latest = await documents.lock_latest(
        conn, document_id=document_id, version_id=UUID(work["version_id"])
    )
    if latest.skipped is not None:
        raise Conflict(f"nothing to retry: {latest.skipped}")
    await documents.set_status(conn, document_id=document_id, status="pending", remove=["error"])
    return document_id
