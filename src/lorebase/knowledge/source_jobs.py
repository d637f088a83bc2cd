"""The jobs about a source, seen from the source: its status follows its sync jobs (queued →
syncing → idle or failed, with the last sync, the last error and the next scheduled sync), its
deletion is a job, and a periodic tick queues the syncs that are due.

The runner calls `job_started` / `job_ended` for every job; jobs that name no source are
ignored. Both run in the transaction that records the job's own status.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from uuid import UUID

from lorebase.context import AppContext
from lorebase.db import Conn
from lorebase.documents import source_links
from lorebase.knowledge import sources_repository
from lorebase.knowledge.sources import git
from lorebase.knowledge.sources_service import queue_sync

log = logging.getLogger(__name__)

SYNC_KINDS = ("crawl", "git")
DELETE_KIND = "source_delete"
DUE_PER_TICK = 100  # sources queued per tick at most; the next tick takes the rest


def source_of(row: dict[str, Any]) -> UUID | None:
    """The source a job is about, if any."""
    source_id = (row.get("payload") or {}).get("source_id")
    if row["kind"] not in (*SYNC_KINDS, DELETE_KIND) or not source_id:
        return None
    return UUID(str(source_id))


async def job_started(conn: Conn, row: dict[str, Any]) -> None:
    source_id = source_of(row)
    if source_id is not None and row["kind"] in SYNC_KINDS:
        await sources_repository.record_sync_start(conn, source_id=source_id, job_id=row["id"])


async def job_ended(conn: Conn, row: dict[str, Any], status: str, error: str | None) -> None:
    """Record how a job about a source ended (`succeeded`, `failed` or `cancelled`)."""
    source_id = source_of(row)
    if source_id is None:
        return
    if row["kind"] == DELETE_KIND:
        if status != "succeeded":
            reason = error or status
            await sources_repository.record_delete_failed(
                conn, source_id=source_id, error=f"deletion {status}: {reason}"
            )
        return
    await source_links.link_source(
        conn,
        project_id=row["project_id"],
        source_id=source_id,
        document_ids=list(row["document_ids"] or []),
    )
    await sources_repository.record_sync_end(
        conn, source_id=source_id, job_id=row["id"], outcome=status, error=error
    )


async def delete_source(ctx: AppContext, row: dict[str, Any]) -> dict[str, Any]:
    """The `source_delete` job: the source's documents (versions, chunks) and then the source,
    in one transaction, so a failure leaves everything as it was."""
    source_id = source_of(row)
    assert source_id is not None
    async with ctx.db.transaction() as conn:
        source = await sources_repository.lock_source(conn, source_id=source_id)
        if source is None:
            return {"documents": 0}  # already gone (a retry after a commit)
        deleted = await source_links.delete_source_documents(
            conn, project_id=source["project_id"], source_id=source_id
        )
        await sources_repository.delete_source(conn, source_id=source_id)
    if source["kind"] == "git":  # the clone this machine kept for incremental re-syncs
        await asyncio.to_thread(git.drop_cache, ctx.settings.lorebase_data_dir, str(source_id))
    return {"documents": deleted}


async def queue_due_syncs(ctx: AppContext, *, limit: int = DUE_PER_TICK) -> int:
    """Queue a sync for every source whose next sync is due and that has no job under way.
    Rows are claimed with SKIP LOCKED in one transaction: workers ticking at the same time
    never queue a source twice."""
    async with ctx.db.transaction() as conn:
        due = await sources_repository.claim_due(conn, limit=limit)
        for source in due:
            await queue_sync(conn, source=source, created_by=source["created_by"])
            await sources_repository.push_next_sync(conn, source_id=source["id"])
    if due:
        log.info("queued scheduled source syncs", extra={"count": len(due)})
    return len(due)
