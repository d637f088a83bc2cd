"""SQL for `sources` (a crawl or git source a project keeps in sync) and `source_items` (the
state of each page or file it brought in, for incremental re-syncs)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from lorebase.db import Conn

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
    row = await cursor.fetchone()
    assert row is not None
    return row


async def get_source(conn: Conn, *, source_id: UUID) -> dict[str, Any] | None:
    cursor = await conn.execute(f"SELECT {SOURCE_COLUMNS} FROM sources WHERE id = %s", (source_id,))
    return await cursor.fetchone()


async def set_state(conn: Conn, *, source_id: UUID, state: dict[str, Any]) -> None:
    """Merge `state` (what the last sync left, e.g. the git commit) into the source's state."""
    await conn.execute(
        "UPDATE sources SET state = state || %s, updated_at = now() WHERE id = %s",
        (Jsonb(state), source_id),
    )


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
