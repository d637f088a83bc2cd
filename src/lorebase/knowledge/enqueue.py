"""Create job records and queue them, on the caller's connection and transaction."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.db import Conn
from lorebase.documents.models import Written
from lorebase.jobs import defer_job
from lorebase.knowledge import repository


async def create_job(
    conn: Conn,
    *,
    project_id: UUID,
    kind: str,
    payload: dict[str, Any],
    document_ids: list[UUID] | None = None,
    created_by: UUID | None = None,
) -> dict[str, Any]:
    """Insert the job record and its queue entry; both commit with the caller's transaction.
    Jobs about one source (its syncs, its deletion) share a queue lock: one runs at a time."""
    row = await repository.insert_job(
        conn,
        project_id=project_id,
        kind=kind,
        payload=payload,
        document_ids=document_ids or [],
        created_by=created_by,
    )
    source_id = payload.get("source_id")
    await defer_job(conn, job_id=row["id"], lock=f"source:{source_id}" if source_id else None)
    return row


async def enqueue_index(
    conn: Conn,
    *,
    project_id: UUID,
    document_id: UUID,
    version_id: UUID,
    kind: str,
    created_by: UUID | None,
) -> UUID:
    """Queue the indexing of one document version (uploads, texts, API versions)."""
    row = await create_job(
        conn,
        project_id=project_id,
        kind=kind,
        payload={"document_id": str(document_id), "version_id": str(version_id)},
        document_ids=[document_id],
        created_by=created_by,
    )
    job_id: UUID = row["id"]
    return job_id


async def enqueue_written(
    conn: Conn, *, written: Written, kind: str, created_by: UUID | None
) -> UUID | None:
    """Queue the version `write_version` left waiting, if any, in the same transaction: the
    job commits with the document, so an accepted write is never lost."""
    version = written.to_index
    if version is None:
        return None
    return await enqueue_index(
        conn,
        project_id=written.document["project_id"],
        document_id=written.document["id"],
        version_id=version["id"],
        kind=kind,
        created_by=created_by,
    )
