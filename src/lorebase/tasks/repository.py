"""SQL for tasks and their dependency edges."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.db import Conn, one_row, page_of, where_equal
from lorebase.paging import PageRequest
from lorebase.tasks.schemas import TaskCreate, TaskFilter

PLAIN_COLUMNS = """
    t.id, t.project_id, t.title, t.description, t.status, t.priority, t.assignee,
    t.created_by, t.created_at, t.updated_at"""
# Dependencies come back as an array ordered by the dependency's creation (stable output).
COLUMNS = PLAIN_COLUMNS + """,
    COALESCE((
        SELECT array_agg(d.depends_on_id ORDER BY dt.created_at, dt.id)
        FROM task_dependencies d JOIN tasks dt ON dt.id = d.depends_on_id
        WHERE d.task_id = t.id
    ), '{}'::uuid[]) AS dependencies
"""
UPDATABLE = ("title", "description", "status", "priority", "assignee")


async def lock_project_tasks(conn: Conn, *, project_id: UUID) -> None:
    """Serialise dependency changes within one project (until the transaction ends), so two
    concurrent edits cannot each pass the cycle check and together close a cycle."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('lorebase.tasks:' || %s::text, 0))",
        (project_id,),
    )


async def insert_task(
    conn: Conn,
    *,
    data: TaskCreate,
    created_by: UUID,
) -> UUID:
    """The new task's id (its dependencies are written by `replace_dependencies`)."""
    cur = await conn.execute(
        """
        INSERT INTO tasks (project_id, title, description, status, priority, assignee, created_by)
        VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id
        """,
        (
            data.project_id,
            data.title,
            data.description,
            data.status,
            data.priority,
            data.assignee,
            created_by,
        ),
    )
    row = await one_row(cur)
    task_id: UUID = row["id"]
    return task_id


async def get_task(conn: Conn, *, task_id: UUID) -> dict[str, Any] | None:
    cur = await conn.execute(f"SELECT {COLUMNS} FROM tasks t WHERE t.id = %s", (task_id,))
    return await cur.fetchone()


async def get_task_project(conn: Conn, *, task_id: UUID, lock: bool = False) -> UUID | None:
    """The project a task belongs to (None when there is no such task)."""
    suffix = " FOR NO KEY UPDATE" if lock else ""
    cur = await conn.execute("SELECT project_id FROM tasks WHERE id = %s" + suffix, (task_id,))
    row = await cur.fetchone()
    return None if row is None else UUID(str(row["project_id"]))


async def list_tasks(
    conn: Conn,
    *,
    filters: TaskFilter,
    page: PageRequest,
) -> tuple[list[dict[str, Any]], int]:
    where: list[str] = []
    params: list[Any] = []
    where_equal(
        where,
        params,
        {
            "t.project_id": filters.project_id,
            "t.status": filters.status,
            "t.priority": filters.priority,
            "t.assignee": filters.assignee,
        },
    )
    condition = " AND ".join(where)
    # The page first, then its dependency arrays in one grouped join: a correlated subquery
    # per task cost twice the database time for a page of 25 (bench/RESULTS.md).
    cur = await conn.execute(
        f"""
        WITH page AS MATERIALIZED (
            SELECT {PLAIN_COLUMNS}, count(*) OVER () AS total FROM tasks t
            WHERE {condition}
            ORDER BY t.created_at, t.id
            OFFSET %s LIMIT %s
        )
        SELECT p.*, COALESCE(d.ids, '{{}}'::uuid[]) AS dependencies FROM page p
        LEFT JOIN (
            SELECT d.task_id, array_agg(d.depends_on_id ORDER BY dt.created_at, dt.id) AS ids
            FROM task_dependencies d JOIN tasks dt ON dt.id = d.depends_on_id
            WHERE d.task_id IN (SELECT id FROM page)
            GROUP BY d.task_id
        ) d ON d.task_id = p.id
        ORDER BY p.created_at, p.id
        """,
        (*params, page.skip, page.limit),
    )
    # Rows keep their `total` column: TaskRead ignores it (no copy of 25 dicts a page).
    count = f"SELECT count(*) AS total FROM tasks t WHERE {condition}"
    return await page_of(conn, await cur.fetchall(), skip=page.skip, count=count, params=params)


async def get_project_tasks(
    conn: Conn, *, project_id: UUID, task_ids: list[UUID]
) -> list[dict[str, Any]]:
    """Those of `task_ids` that are tasks of `project_id` (id, title, status), locked against
    deletion until the transaction ends."""
    if not task_ids:
        return []
    cur = await conn.execute(
        """
        SELECT id, title, status FROM tasks
        WHERE project_id = %s AND id = ANY(%s::uuid[])
        ORDER BY created_at, id
        FOR KEY SHARE
        """,
        (project_id, task_ids),
    )
    return await cur.fetchall()


async def get_titles(conn: Conn, *, task_ids: list[UUID]) -> dict[UUID, str]:
    cur = await conn.execute(
        "SELECT id, title FROM tasks WHERE id = ANY(%s::uuid[])", (list(set(task_ids)),)
    )
    return {UUID(str(row["id"])): str(row["title"]) for row in await cur.fetchall()}


async def reachable_edges(
    conn: Conn, *, start_ids: list[UUID], target_id: UUID
) -> list[tuple[UUID, UUID]] | None:
    """Whether `target` can be reached from any of `start_ids` along dependency edges (so
    making `target` depend on them would close a cycle). None when it cannot; otherwise the
    edges `(task, depends_on)` of the explored subgraph, for naming the cycle. The walk keeps
    one row per task (UNION), so it stays linear however many paths the graph has."""
    if not start_ids:
        return None
    reach = """
        WITH RECURSIVE reach(id) AS (
            SELECT s FROM unnest(%s::uuid[]) AS s
            UNION
            SELECT d.depends_on_id FROM reach r JOIN task_dependencies d ON d.task_id = r.id
            WHERE r.id <> %s
        )
    """
    cur = await conn.execute(
        reach + "SELECT EXISTS (SELECT 1 FROM reach WHERE id = %s) AS hit",
        (start_ids, target_id, target_id),
    )
    row = await cur.fetchone()
    if not (row and row["hit"]):
        return None
    cur = await conn.execute(
        reach + """
        SELECT d.task_id, d.depends_on_id FROM task_dependencies d
        JOIN reach r ON d.task_id = r.id WHERE r.id <> %s
        """,
        (start_ids, target_id, target_id),
    )
    return [
        (UUID(str(edge["task_id"])), UUID(str(edge["depends_on_id"])))
        for edge in await cur.fetchall()
    ]


async def update_task(conn: Conn, *, task_id: UUID, changes: dict[str, Any]) -> None:
    fields = [name for name in UPDATABLE if name in changes]
    assignments = "".join(f"{name} = %s, " for name in fields)
    await conn.execute(
        f"UPDATE tasks SET {assignments}updated_at = now() WHERE id = %s",
        (*[changes[name] for name in fields], task_id),
    )


async def replace_dependencies(conn: Conn, *, task_id: UUID, depends_on: list[UUID]) -> None:
    await conn.execute("DELETE FROM task_dependencies WHERE task_id = %s", (task_id,))
    if depends_on:
        await conn.execute(
            """
            INSERT INTO task_dependencies (task_id, depends_on_id)
            SELECT %s, d FROM unnest(%s::uuid[]) AS d
            """,
            (task_id, depends_on),
        )


async def delete_task(conn: Conn, *, task_id: UUID) -> bool:
    cur = await conn.execute("DELETE FROM tasks WHERE id = %s", (task_id,))
    return cur.rowcount > 0
