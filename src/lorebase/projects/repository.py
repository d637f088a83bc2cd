"""SQL for projects and memberships."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.db import Conn, one_row, page_of, where_equal
from lorebase.paging import PageRequest
from lorebase.projects.schemas import ProjectFilter

COLUMNS = (
    "p.id, p.name, p.description, p.status, p.tags, p.parent_id, p.owner_id, p.created_at, "
    "p.updated_at, p.text_search_config::text AS text_search_config, p.embedding_model, "
    "p.embedding_dim, p.corpus_generation, p.settings"
)
UPDATABLE = ("name", "description", "tags", "status", "parent_id")


async def insert_project(
    conn: Conn,
    *,
    owner_id: UUID,
    name: str,
    description: str | None,
    tags: list[str],
    status: str,
    parent_id: UUID | None,
) -> dict[str, Any]:
    cur = await conn.execute(
        """
        WITH p AS (
            INSERT INTO projects (name, description, tags, status, parent_id, owner_id)
            VALUES (%s, %s, %s, %s, %s, %s) RETURNING *
        ), m AS (
            INSERT INTO project_members (project_id, user_id, role)
            SELECT id, owner_id, 'owner' FROM p
        )
        SELECT """ + COLUMNS + ", 'owner' AS role FROM p",
        (name, description, tags, status, parent_id, owner_id),
    )
    return await one_row(cur)


async def get_project_with_role(
    conn: Conn, *, project_id: UUID, user_id: UUID
) -> dict[str, Any] | None:
    """The project and the user's role in it (role None when not a member)."""
    cur = await conn.execute(
        f"""
        SELECT {COLUMNS}, m.role FROM projects p
        LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = %s
        WHERE p.id = %s
        """,
        (user_id, project_id),
    )
    return await cur.fetchone()


async def list_projects(
    conn: Conn,
    *,
    user_id: UUID,
    all_projects: bool,
    only_project: UUID | None,
    filters: ProjectFilter,
    page: PageRequest,
) -> tuple[list[dict[str, Any]], int]:
    where = ["TRUE"]
    params: list[Any] = [user_id]
    if not all_projects:
        where.append("m.user_id IS NOT NULL")
    where_equal(
        where,
        params,
        {"p.id": only_project, "p.status": filters.status, "p.parent_id": filters.parent_id},
    )
    if filters.tag is not None:
        where.append("p.tags @> ARRAY[%s]::text[]")
        params.append(filters.tag)
    sql = f"""
        SELECT {COLUMNS}, m.role, count(*) OVER () AS total FROM projects p
        LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = %s
        WHERE {" AND ".join(where)}
        ORDER BY p.created_at DESC, p.id
        OFFSET %s LIMIT %s
    """
    cur = await conn.execute(sql, (*params, page.skip, page.limit))
    count = f"""SELECT count(*) AS total FROM projects p
        LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = %s
        WHERE {" AND ".join(where)}"""
    return await page_of(conn, await cur.fetchall(), skip=page.skip, count=count, params=params)


async def update_project(
    conn: Conn, *, project_id: UUID, changes: dict[str, Any]
) -> dict[str, Any] | None:
    fields = [name for name in UPDATABLE if name in changes]
    assignments = ", ".join(f"{name} = %s" for name in fields)
    cur = await conn.execute(
        f"""
        UPDATE projects p SET {assignments}, updated_at = now() WHERE p.id = %s
        RETURNING {COLUMNS}
        """,
        (*[changes[name] for name in fields], project_id),
    )
    return await cur.fetchone()


async def is_ancestor_or_self(conn: Conn, *, candidate: UUID, project_id: UUID) -> bool:
    """Whether `project_id` is `candidate` or one of its ancestors (would make a cycle)."""
    cur = await conn.execute(
        """
        WITH RECURSIVE up(id, parent_id) AS (
            SELECT id, parent_id FROM projects WHERE id = %s
            UNION
            SELECT p.id, p.parent_id FROM projects p JOIN up ON p.id = up.parent_id
        )
        SELECT EXISTS (SELECT 1 FROM up WHERE id = %s) AS hit
        """,
        (candidate, project_id),
    )
    row = await cur.fetchone()
    return bool(row and row["hit"])


async def count_children(conn: Conn, *, project_id: UUID) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM projects WHERE parent_id = %s", (project_id,)
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def descendant_ids(conn: Conn, *, project_id: UUID) -> list[UUID]:
    """Every project below `project_id` (children, their children...)."""
    cur = await conn.execute(
        """
        WITH RECURSIVE tree(id) AS (
            SELECT id FROM projects WHERE parent_id = %s
            UNION ALL
            SELECT p.id FROM projects p JOIN tree t ON p.parent_id = t.id
        )
        SELECT id FROM tree
        """,
        (project_id,),
    )
    return [row["id"] for row in await cur.fetchall()]


async def delete_project_tree(conn: Conn, *, project_id: UUID) -> None:
    """Delete the project and all its descendants (children first)."""
    await conn.execute(
        """
        WITH RECURSIVE tree(id, depth) AS (
            SELECT id, 0 FROM projects WHERE id = %s
            UNION ALL
            SELECT p.id, t.depth + 1 FROM projects p JOIN tree t ON p.parent_id = t.id
        )
        DELETE FROM projects WHERE id IN (SELECT id FROM tree)
        """,
        (project_id,),
    )


async def bump_corpus_generation(conn: Conn, *, project_id: UUID) -> int:
    cur = await conn.execute(
        "UPDATE projects SET corpus_generation = corpus_generation + 1 WHERE id = %s "
        "RETURNING corpus_generation",
        (project_id,),
    )
    row = await cur.fetchone()
    return int(row["corpus_generation"]) if row else 0


async def upsert_member(
    conn: Conn, *, project_id: UUID, user_id: UUID, role: str
) -> dict[str, Any]:
    cur = await conn.execute(
        """
        INSERT INTO project_members (project_id, user_id, role) VALUES (%s, %s, %s)
        ON CONFLICT (project_id, user_id) DO UPDATE SET role = EXCLUDED.role, updated_at = now()
        RETURNING project_id, user_id, role, created_at, updated_at
        """,
        (project_id, user_id, role),
    )
    return await one_row(cur)


async def list_members(conn: Conn, *, project_id: UUID) -> list[dict[str, Any]]:
    """Members with their username and e-mail, owners first."""
    cur = await conn.execute(
        """
        SELECT m.project_id, m.user_id, u.username, u.email, m.role, m.created_at, m.updated_at
        FROM project_members m JOIN users u ON u.id = m.user_id
        WHERE m.project_id = %s
        ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'editor' THEN 1 ELSE 2 END,
                 lower(u.username)
        """,
        (project_id,),
    )
    return await cur.fetchall()


async def delete_member(conn: Conn, *, project_id: UUID, user_id: UUID) -> bool:
    cur = await conn.execute(
        "DELETE FROM project_members WHERE project_id = %s AND user_id = %s",
        (project_id, user_id),
    )
    return cur.rowcount > 0


async def count_owners(conn: Conn, *, project_id: UUID) -> int:
    cur = await conn.execute(
        "SELECT count(*) AS n FROM project_members WHERE project_id = %s AND role = 'owner'",
        (project_id,),
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def user_exists(conn: Conn, *, user_id: UUID) -> bool:
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM users WHERE id = %s) AS e", (user_id,))
    row = await cur.fetchone()
    return bool(row and row["e"])
