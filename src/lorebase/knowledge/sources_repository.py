"""SQL for `sources` (a crawl or git source a project keeps in sync) and `source_items` (the
state of each page or file it brought in, for incremental re-syncs)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from lorebase.db import Conn, one_row

SOURCE_COLUMNS = (
    "id, project_id, kind, uri, settings, state, sync_interval_seconds, next_sync_at, status, "
    "last_job_id, last_synced_at, last_error, created_by, created_at, updated_at"
)


async def upsert_source(
    conn: Conn,
    *,
    project_id: UUID,
    kind: str,
    uri: str,
    settings: dict[str, Any],
    created_by: UUID | None,
) -> dict[str, Any]:
    """The source for (project, kind, uri), created on first use; a later request with other
    options updates its settings (the newest request says how to sync it)."""
    cursor = await conn.execute(
        f"""
        INSERT INTO sources (project_id, kind, uri, settings, created_by)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (project_id, kind, uri)
        DO UPDATE SET settings = EXCLUDED.settings, updated_at = now()
        RETURNING {SOURCE_COLUMNS}
        """,
        (project_id, kind, uri, Jsonb(settings), created_by),
    )
    return await one_row(cursor)


async def get_source(conn: Conn, *, source_id: UUID) -> dict[str, Any] | None:
    cursor = await conn.execute(f"SELECT {SOURCE_COLUMNS} FROM sources WHERE id = %s", (source_id,))
    return await cursor.fetchone()


async def set_state(conn: Conn, *, source_id: UUID, state: dict[str, Any]) -> None:
    """Merge `state` (what the last sync left, e.g. the git commit) into the source's state."""
    await conn.execute(
        "UPDATE sources SET state = state || %s, updated_at = now() WHERE id = %s",
        (Jsonb(state), source_id),
    )


# --- the sources API and the scheduler --------------------------------------------------------

# Jobs about a source: its syncs and its deletion (the job payload names the source).
SOURCE_JOB_KINDS = ("crawl", "git", "source_delete")

_COUNTED = f"""
    SELECT {", ".join("s." + c.strip() for c in SOURCE_COLUMNS.split(","))},
           coalesce(d.documents, 0) AS documents, coalesce(d.retired, 0) AS retired
    FROM sources s
    LEFT JOIN LATERAL (
        SELECT count(*) AS documents, count(*) FILTER (WHERE status = 'retired') AS retired
        FROM documents WHERE source_id = s.id
    ) d ON true
"""


async def list_sources(
    conn: Conn, *, project_id: UUID, skip: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """A project's sources, oldest first, with their document counts."""
    cursor = await conn.execute(
        f"{_COUNTED} WHERE s.project_id = %s ORDER BY s.created_at, s.id OFFSET %s LIMIT %s",
        (project_id, skip, limit),
    )
    rows = await cursor.fetchall()
    count = await conn.execute(
        "SELECT count(*) AS n FROM sources WHERE project_id = %s", (project_id,)
    )
    total = await count.fetchone()
    return rows, int(total["n"]) if total else 0


async def get_counted_source(conn: Conn, *, source_id: UUID) -> dict[str, Any] | None:
    cursor = await conn.execute(f"{_COUNTED} WHERE s.id = %s", (source_id,))
    return await cursor.fetchone()


async def lock_source(conn: Conn, *, source_id: UUID) -> dict[str, Any] | None:
    """The source, row-locked until the transaction ends (orders syncs, edits, deletion)."""
    cursor = await conn.execute(
        f"SELECT {SOURCE_COLUMNS} FROM sources WHERE id = %s FOR UPDATE", (source_id,)
    )
    return await cursor.fetchone()


async def active_job(conn: Conn, *, project_id: UUID, source_id: UUID) -> UUID | None:
    """A queued or running job about this source, if any."""
    cursor = await conn.execute(
        """
        SELECT id FROM jobs
        WHERE project_id = %s AND kind = ANY(%s) AND status IN ('queued', 'running')
          AND payload->>'source_id' = %s
        ORDER BY created_at LIMIT 1
        """,
        (project_id, list(SOURCE_JOB_KINDS), str(source_id)),
    )
    row = await cursor.fetchone()
    return None if row is None else UUID(str(row["id"]))


async def update_source(
    conn: Conn, *, source_id: UUID, settings: dict[str, Any], interval: int | None
) -> None:
    """New settings and interval; the next sync is due `interval` after the last one."""
    await conn.execute(
        """
        UPDATE sources SET settings = %(settings)s, sync_interval_seconds = %(interval)s,
               next_sync_at = CASE WHEN %(interval)s::int IS NULL THEN NULL
                   ELSE coalesce(last_synced_at, now()) + make_interval(secs => %(interval)s)
               END,
               updated_at = now()
        WHERE id = %(id)s
        """,
        {"settings": Jsonb(settings), "interval": interval, "id": source_id},
    )


async def mark_deleting(conn: Conn, *, source_id: UUID, job_id: UUID) -> None:
    await conn.execute(
        """
        UPDATE sources SET status = 'deleting', last_job_id = %s, next_sync_at = NULL,
               updated_at = now()
        WHERE id = %s
        """,
        (job_id, source_id),
    )


async def delete_source(conn: Conn, *, source_id: UUID) -> bool:
    cursor = await conn.execute("DELETE FROM sources WHERE id = %s RETURNING id", (source_id,))
    return await cursor.fetchone() is not None


async def record_sync_start(conn: Conn, *, source_id: UUID, job_id: UUID) -> None:
    """Its sync job started: `syncing` (unless a newer job or the deletion took over)."""
    await conn.execute(
        """
        UPDATE sources SET status = 'syncing', updated_at = now()
        WHERE id = %s AND last_job_id = %s AND status IN ('idle', 'queued', 'failed')
        """,
        (source_id, job_id),
    )


async def record_sync_end(
    conn: Conn, *, source_id: UUID, job_id: UUID, outcome: str, error: str | None
) -> None:
    """Its sync job ended (`succeeded`, `failed` or `cancelled`): status, last sync or error,
    and the next sync `sync_interval_seconds` from now. A source whose newer job is already
    queued stays `queued`; one being deleted stays `deleting`."""
    await conn.execute(
        """
        UPDATE sources SET
            status = CASE
                WHEN status = 'deleting' OR last_job_id IS DISTINCT FROM %(job)s THEN status
                WHEN %(outcome)s = 'failed' THEN 'failed' ELSE 'idle' END,
            last_synced_at = CASE WHEN %(outcome)s = 'succeeded' THEN now()
                ELSE last_synced_at END,
            last_error = CASE WHEN %(outcome)s = 'succeeded' THEN NULL ELSE %(error)s END,
            next_sync_at = CASE WHEN status = 'deleting' OR sync_interval_seconds IS NULL
                THEN NULL ELSE now() + make_interval(secs => sync_interval_seconds) END,
            updated_at = now()
        WHERE id = %(id)s
        """,
        {"job": job_id, "outcome": outcome, "error": error, "id": source_id},
    )


async def record_delete_failed(conn: Conn, *, source_id: UUID, error: str) -> None:
    """Its deletion failed or was cancelled: the source stays, with the reason."""
    await conn.execute(
        """
        UPDATE sources SET status = 'failed', last_error = %s,
            next_sync_at = CASE WHEN sync_interval_seconds IS NULL THEN NULL
                ELSE now() + make_interval(secs => sync_interval_seconds) END,
            updated_at = now()
        WHERE id = %s AND status = 'deleting'
        """,
        (error, source_id),
    )


async def push_next_sync(conn: Conn, *, source_id: UUID) -> None:
    """A claimed source's next sync moves one interval ahead (its job's end sets it again): a
    tick that waited for the row lock sees it no longer due."""
    await conn.execute(
        """
        UPDATE sources SET next_sync_at = now() + make_interval(secs => sync_interval_seconds)
        WHERE id = %s AND sync_interval_seconds IS NOT NULL
        """,
        (source_id,),
    )


async def claim_due(conn: Conn, *, limit: int) -> list[dict[str, Any]]:
    """Sources whose next sync is due and that have no job under way, row-locked; a source
    another worker is claiming is skipped (SKIP LOCKED), so no sync is queued twice."""
    cursor = await conn.execute(
        f"""
        SELECT {SOURCE_COLUMNS} FROM sources s
        WHERE next_sync_at <= now() AND status <> 'deleting'
          AND NOT EXISTS (
              SELECT 1 FROM jobs j
              WHERE j.project_id = s.project_id AND j.kind = ANY(%s)
                AND j.status IN ('queued', 'running') AND j.payload->>'source_id' = s.id::text
          )
        ORDER BY next_sync_at
        LIMIT %s
        FOR UPDATE OF s SKIP LOCKED
        """,
        (list(SOURCE_JOB_KINDS), limit),
    )
    return await cursor.fetchall()


# --- source_items ----------------------------------------------------------------------------


_ITEM_COLUMNS = (
    "source_id, uri, document_id, etag, last_modified, content_hash, misses, retired, "
    "last_seen_at, links"
)


async def list_items(conn: Conn, *, source_id: UUID) -> list[dict[str, Any]]:
    """The source's items, each with its document's status (`document_status`, None when the
    document was deleted)."""
    columns = ", ".join(f"i.{name.strip()}" for name in _ITEM_COLUMNS.split(","))
    cursor = await conn.execute(
        f"""
        SELECT {columns}, d.status AS document_status
        FROM source_items i LEFT JOIN documents d ON d.id = i.document_id
        WHERE i.source_id = %s ORDER BY i.uri
        """,
        (source_id,),
    )
    return await cursor.fetchall()


async def upsert_item(
    conn: Conn,
    *,
    source_id: UUID,
    uri: str,
    document_id: UUID | None,
    etag: str | None = None,
    last_modified: str | None = None,
    content_hash: str | None = None,
    links: list[str] | None = None,
) -> None:
    """Record a page/file seen by this sync: validators and hash refreshed, misses reset, the
    document linked to the source."""
    await conn.execute(
        """
        INSERT INTO source_items
            (source_id, uri, document_id, etag, last_modified, content_hash, links)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (source_id, uri) DO UPDATE SET
            document_id = COALESCE(EXCLUDED.document_id, source_items.document_id),
            etag = EXCLUDED.etag,
            last_modified = EXCLUDED.last_modified,
            content_hash = COALESCE(EXCLUDED.content_hash, source_items.content_hash),
            links = COALESCE(EXCLUDED.links, source_items.links),
            misses = 0,
            retired = false,
            last_seen_at = now()
        """,
        (source_id, uri, document_id, etag, last_modified, content_hash, links),
    )
    if document_id is not None:
        await conn.execute(
            """
            UPDATE documents SET source_id = %s
            WHERE id = %s AND source_id IS DISTINCT FROM %s
            """,
            (source_id, document_id, source_id),
        )


async def delete_items(conn: Conn, *, source_id: UUID, uris: list[str]) -> None:
    """Forget items whose documents were deleted (a repository's removed files)."""
    if uris:
        await conn.execute(
            "DELETE FROM source_items WHERE source_id = %s AND uri = ANY(%s)", (source_id, uris)
        )


async def count_miss(conn: Conn, *, source_id: UUID, uri: str) -> int:
    """One more sync found this item gone; returns how many in a row."""
    cursor = await conn.execute(
        """
        UPDATE source_items SET misses = misses + 1
        WHERE source_id = %s AND uri = %s RETURNING misses
        """,
        (source_id, uri),
    )
    row = await cursor.fetchone()
    return int(row["misses"]) if row else 0


async def mark_retired(conn: Conn, *, source_id: UUID, uri: str) -> None:
    await conn.execute(
        "UPDATE source_items SET retired = true WHERE source_id = %s AND uri = %s",
        (source_id, uri),
    )


async def mark_queued(conn: Conn, *, source_id: UUID, job_id: UUID) -> None:
    """A sync job for this source was queued."""
    await conn.execute(
        """
        UPDATE sources SET status = 'queued', last_job_id = %s, updated_at = now()
        WHERE id = %s
        """,
        (job_id, source_id),
    )
