"""SQL of the administrators' overview: queue depth, recent failures, embedding spaces."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.db import Conn


async def queue_depth(conn: Conn) -> dict[str, Any]:
    """Jobs waiting and running over every project, and when the oldest waiting one came."""
    cursor = await conn.execute("""
        SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
               count(*) FILTER (WHERE status = 'running') AS running,
               min(created_at) FILTER (WHERE status = 'queued') AS oldest_queued_at
        FROM jobs WHERE status IN ('queued', 'running')
        """)
    row = await cursor.fetchone()
    return dict(row) if row else {"queued": 0, "running": 0, "oldest_queued_at": None}


async def recent_failures(
    conn: Conn, *, hours: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Jobs that failed in the last `hours`, newest first, with their project's name."""
    cursor = await conn.execute(
        """
        SELECT j.id, j.project_id, p.name AS project_name, j.kind, j.error, j.finished_at,
               j.payload->>'url' AS url, j.payload->>'retried_as' AS retried_as,
               count(*) OVER () AS total
        FROM jobs j JOIN projects p ON p.id = j.project_id
        WHERE j.status = 'failed' AND j.finished_at > now() - make_interval(hours => %s)
        ORDER BY j.finished_at DESC, j.id LIMIT %s
        """,
        (hours, limit),
    )
    rows = await cursor.fetchall()
    return rows, int(rows[0]["total"]) if rows else 0


async def projects_with_jobs(
    conn: Conn, *, hours: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Projects by name with their embedding space and their queued, running and recently
    failed jobs."""
    cursor = await conn.execute(
        """
        SELECT p.id, p.name, p.status, p.embedding_model, p.embedding_dim,
               count(j.id) FILTER (WHERE j.status = 'queued') AS queued,
               count(j.id) FILTER (WHERE j.status = 'running') AS running,
               count(j.id) FILTER (WHERE j.status = 'failed') AS failed,
               count(*) OVER () AS total
        FROM projects p
        LEFT JOIN jobs j ON j.project_id = p.id AND (
            j.status IN ('queued', 'running')
            OR (j.status = 'failed' AND j.finished_at > now() - make_interval(hours => %s)))
        GROUP BY p.id ORDER BY lower(p.name), p.id LIMIT %s
        """,
        (hours, limit),
    )
    rows = await cursor.fetchall()
    return rows, int(rows[0]["total"]) if rows else 0


async def stored_spaces(conn: Conn, *, project_ids: list[UUID]) -> list[dict[str, Any]]:
    """What the stored chunks of these projects are embedded with (a project being moved to
    another model holds two spaces until `lorebase reembed` finishes)."""
    cursor = await conn.execute(
        """
        SELECT project_id, embedding_model, embedding_dim, count(*) AS items,
               count(DISTINCT document_id) AS documents
        FROM knowledge_items WHERE project_id = ANY(%s)
        GROUP BY project_id, embedding_model, embedding_dim
        ORDER BY project_id, count(*) DESC
        """,
        (project_ids,),
    )
    return await cursor.fetchall()
