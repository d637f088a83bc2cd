"""SQL for ingestion: job records (`jobs`) and the searchable chunks (`knowledge_items`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
from psycopg.types.json import Jsonb

from lorebase.db import Conn, one_row, page_of
from lorebase.knowledge.schemas import JobFilter
from lorebase.paging import PageRequest

_JOB_COLUMNS = (
    "id, project_id, kind, status, stage, progress_done, progress_total, error, document_ids, "
    "payload, attempts, cancel_requested, created_by, created_at, started_at, heartbeat_at, "
    "finished_at"
)


# --- jobs ----------------------------------------------------------------------------------


async def insert_job(
    conn: Conn,
    *,
    project_id: UUID,
    kind: str,
    payload: dict[str, Any],
    document_ids: list[UUID],
    created_by: UUID | None,
) -> dict[str, Any]:
    cursor = await conn.execute(
        f"""
        INSERT INTO jobs (project_id, kind, payload, document_ids, created_by)
        VALUES (%s, %s, %s, %s, %s)
        RETURNING {_JOB_COLUMNS}
        """,
        (project_id, kind, Jsonb(payload), document_ids, created_by),
    )
    return await one_row(cursor)


async def get_job(conn: Conn, *, job_id: UUID) -> dict[str, Any] | None:
    cursor = await conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
    return await cursor.fetchone()


_JOB_FILTER = """
    (%(project_id)s::uuid IS NULL OR project_id = %(project_id)s)
    AND (%(member)s::uuid IS NULL OR project_id IN (
        SELECT project_id FROM project_members WHERE user_id = %(member)s))
    AND (%(status)s::text IS NULL OR status = %(status)s)
    AND (%(kind)s::text IS NULL OR kind = %(kind)s)
"""


async def list_jobs(
    conn: Conn,
    *,
    project_id: UUID | None,
    member: UUID | None,
    filters: JobFilter,
    page: PageRequest,
) -> tuple[list[dict[str, Any]], int]:
    """Jobs, newest first: of one project and/or of the projects `member` belongs to."""
    params = {
        "project_id": project_id,
        "member": member,
        "status": filters.status,
        "kind": filters.kind,
    }
    cursor = await conn.execute(
        f"""
        SELECT {_JOB_COLUMNS}, count(*) OVER () AS total FROM jobs WHERE {_JOB_FILTER}
        ORDER BY created_at DESC, id OFFSET %(skip)s LIMIT %(limit)s
        """,
        {**params, "skip": page.skip, "limit": page.limit},
    )
    count = f"SELECT count(*) AS total FROM jobs WHERE {_JOB_FILTER}"
    return await page_of(conn, await cursor.fetchall(), skip=page.skip, count=count, params=params)


async def start_job(conn: Conn, *, job_id: UUID) -> dict[str, Any] | None:
    """Mark a queued (or stale running) job as running; None if it is finished or cancelled."""
    cursor = await conn.execute(
        f"""
        UPDATE jobs SET status = 'running', attempts = attempts + 1,
               started_at = coalesce(started_at, now()), heartbeat_at = now()
        WHERE id = %s AND status IN ('queued', 'running') AND NOT cancel_requested
        RETURNING {_JOB_COLUMNS}
        """,
        (job_id,),
    )
    return await cursor.fetchone()


async def record_progress(
    conn: Conn,
    *,
    job_id: UUID,
    stage: str,
    done: int,
    total: int,
    stages: dict[str, dict[str, int]],
) -> bool:
    """Store progress and beat the heartbeat; returns whether cancellation was requested."""
    cursor = await conn.execute(
        """
        UPDATE jobs SET stage = %s, progress_done = %s, progress_total = %s,
               payload = jsonb_set(payload, '{stages}', %s), heartbeat_at = now()
        WHERE id = %s
        RETURNING cancel_requested
        """,
        (stage, done, total, Jsonb(stages), job_id),
    )
    row = await cursor.fetchone()
    return bool(row and row["cancel_requested"])


async def add_job_documents(conn: Conn, *, job_id: UUID, document_ids: Sequence[UUID]) -> None:
    await conn.execute(
        """
        UPDATE jobs SET document_ids = ARRAY(
            SELECT DISTINCT unnest(document_ids || %s::uuid[]))
        WHERE id = %s
        """,
        (list(document_ids), job_id),
    )


async def finish_job(
    conn: Conn,
    *,
    job_id: UUID,
    status: str,
    error: str | None,
    result: dict[str, Any] | None = None,
    stages: dict[str, dict[str, int]] | None = None,
    progress: tuple[str, int, int] | None = None,
) -> dict[str, Any] | None:
    """The job's end; the final `stages` and `progress` (stage, done, total) go in the same
    update (progress writes are throttled, so the last ones may not have been written)."""
    extra: dict[str, Any] = {} if result is None else {"result": result}
    if stages is not None:
        extra["stages"] = stages
    stage, done, total = progress or (None, None, None)
    cursor = await conn.execute(
        f"""
        UPDATE jobs SET status = %s, error = %s, finished_at = now(), heartbeat_at = now(),
               payload = payload || %s, stage = COALESCE(%s, stage),
               progress_done = COALESCE(%s, progress_done),
               progress_total = COALESCE(%s, progress_total)
        WHERE id = %s AND status IN ('queued', 'running')
        RETURNING {_JOB_COLUMNS}
        """,
        (status, error, Jsonb(extra), stage, done, total, job_id),
    )
    return await cursor.fetchone()


async def requeue_job(conn: Conn, *, job_id: UUID, error: str) -> None:
    """Back to `queued` after a transient failure; the queue retries it later."""
    await conn.execute(
        "UPDATE jobs SET status = 'queued', error = %s WHERE id = %s AND status = 'running'",
        (error, job_id),
    )


async def request_cancel(conn: Conn, *, job_id: UUID) -> dict[str, Any] | None:
    """Flag a job for cancellation; a queued job is cancelled at once, a running one at its
    next checkpoint. Finished jobs are returned unchanged."""
    cursor = await conn.execute(
        f"""
        UPDATE jobs SET cancel_requested = true,
               status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
               finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
        WHERE id = %s AND status IN ('queued', 'running')
        RETURNING {_JOB_COLUMNS}
        """,
        (job_id,),
    )
    return await cursor.fetchone()


async def lock_job(conn: Conn, *, job_id: UUID) -> dict[str, Any] | None:
    """The job row, locked until commit (a retry and a concurrent retry queue one job)."""
    cursor = await conn.execute(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = %s FOR UPDATE", (job_id,)
    )
    return await cursor.fetchone()


async def mark_retried(conn: Conn, *, job_id: UUID, retried_as: UUID) -> None:
    """Point a finished job at the job that runs it again."""
    await conn.execute(
        "UPDATE jobs SET payload = payload || %s WHERE id = %s",
        (Jsonb({"retried_as": str(retried_as)}), job_id),
    )


# --- projects (ingestion-owned columns) -------------------------------------------------------


async def lock_project_for_ingest(conn: Conn, *, project_id: UUID) -> dict[str, Any] | None:
    """The project's text-search config and embedding model; the row lock orders concurrent
    stores of one project (the corpus generation bump would serialise them anyway)."""
    cursor = await conn.execute(
        """
        SELECT id, text_search_config::text AS text_search_config, embedding_model,
               embedding_dim
        FROM projects WHERE id = %s FOR NO KEY UPDATE
        """,
        (project_id,),
    )
    return await cursor.fetchone()


# --- knowledge items -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemRow:
    chunk_index: int
    chunk_text: str
    content_hash: str
    embedding: np.ndarray[Any, np.dtype[np.float32]]
    metadata: dict[str, Any]


# Prepared rows, ids included, for a binary COPY (`copy_prepared_items`).
PREPARED_COLUMNS = (
    "id, project_id, document_id, document_version_id, chunk_index, chunk_text, content_hash, "
    "embedding, embedding_model, embedding_dim"
)
# Binary COPY types: an item's columns from project_id to embedding_dim.
ITEM_TYPES = ["uuid", "uuid", "uuid", "int4", "text", "text", "vector", "text", "int4"]
PREPARED_TYPES = ["uuid", *ITEM_TYPES]


async def copy_prepared_items(conn: Conn, rows: Iterable[tuple[Any, ...]]) -> int:
    """Binary COPY of rows shaped like `PREPARED_COLUMNS`; returns how many were written."""
    written = 0
    async with conn.cursor() as cur:
        sql = f"COPY knowledge_items ({PREPARED_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        async with cur.copy(sql) as copy:
            copy.set_types(PREPARED_TYPES)
            for row in rows:
                await copy.write_row(row)
                written += 1
    return written


async def current_vectors(
    conn: Conn, *, document_id: UUID, model: str, chunk_hashes: Sequence[str]
) -> list[dict[str, Any]]:
    """The document's current chunks in `model`'s space whose text hash is one of
    `chunk_hashes`: (chunk_text, context, embedding), read through the document_id index."""
    if not chunk_hashes:
        return []
    cursor = await conn.execute(
        "SELECT chunk_text, metadata->>'context' AS context, embedding FROM knowledge_items "
        "WHERE document_id = %s AND embedding_model = %s AND content_hash = ANY(%s)",
        (document_id, model, list(set(chunk_hashes))),
    )
    return list(await cursor.fetchall())


async def delete_document_items(conn: Conn, *, document_id: UUID) -> int:
    cursor = await conn.execute(
        "DELETE FROM knowledge_items WHERE document_id = %s", (document_id,)
    )
    return cursor.rowcount


async def insert_items(
    conn: Conn,
    *,
    project_id: UUID,
    document_id: UUID,
    document_version_id: UUID,
    embedding_model: str,
    embedding_dim: int,
    ts_config: str,
    items: Sequence[ItemRow],
) -> int:
    """Bulk-insert chunks with a binary COPY: a vector goes as its 4-byte floats, where the
    text format had Python print and PostgreSQL parse every float (a tenth of ingestion's
    Python time). A binary regconfig is its oid, looked up first."""
    cur = await conn.execute("SELECT %s::regconfig::oid AS oid", (ts_config,))
    row = await cur.fetchone()
    if row is None:  # a cast that fails raises; this is for the type checker
        raise LookupError(ts_config)
    config_oid = row["oid"]
    async with (
        conn.cursor() as cursor,
        cursor.copy("""
            COPY knowledge_items (project_id, document_id, document_version_id, chunk_index,
                                  chunk_text, content_hash, embedding, embedding_model,
                                  embedding_dim, metadata, ts_config)
            FROM STDIN (FORMAT BINARY)
            """) as copy,
    ):
        copy.set_types([*ITEM_TYPES, "jsonb", "oid"])
        for item in items:
            await copy.write_row(
                (
                    project_id,
                    document_id,
                    document_version_id,
                    item.chunk_index,
                    item.chunk_text,
                    item.content_hash,
                    item.embedding,
                    embedding_model,
                    embedding_dim,
                    Jsonb(item.metadata),
                    config_oid,
                )
            )
    return len(items)
