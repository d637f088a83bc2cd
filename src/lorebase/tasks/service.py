"""Tasks: CRUD within a project, dependencies that stay inside the project and acyclic, and
`done` only once every dependency is done. Permissions come from the project (RBAC).

A write takes the caller's connection and runs in the caller's transaction (the task, its
dependency edges and the checks commit together or not at all); a read opens its own."""

from __future__ import annotations

from collections import deque
from typing import Any
from uuid import UUID

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.db import Conn
from lorebase.errors import Conflict, Invalid, NotFound
from lorebase.paging import Page, PageRequest
from lorebase.projects.service import check_project_of, get_project_for
from lorebase.tasks import repository
from lorebase.tasks.schemas import TaskCreate, TaskFilter, TaskRead, TaskUpdate

DONE = "done"


def _task_not_found(task_id: UUID) -> NotFound:
    return NotFound(f"task {task_id} not found")


async def _authorize_task(
    conn: Conn, *, principal: Principal, task_id: UUID, permission: Permission, lock: bool = False
) -> UUID:
    """The task's project id if the caller holds `permission` there. A task in a project the
    caller cannot see is reported exactly like a task that does not exist."""
    project_id = await repository.get_task_project(conn, task_id=task_id, lock=lock)
    missing = _task_not_found(task_id)
    return await check_project_of(
        conn, project_id, principal=principal, permission=permission, missing=missing
    )


def _label(task_id: UUID, titles: dict[UUID, str]) -> str:
    return f"{titles.get(task_id, '?')!r} ({task_id})"


def _shortest_path(edges: list[tuple[UUID, UUID]], starts: list[UUID], target: UUID) -> list[UUID]:
    """Breadth-first: the shortest `start -> ... -> target` chain over `edges`."""
    graph: dict[UUID, list[UUID]] = {}
    for source, dest in edges:
        graph.setdefault(source, []).append(dest)
    previous: dict[UUID, UUID | None] = {start: None for start in starts}
    queue = deque(starts)
    while queue:
        node = queue.popleft()
        if node == target:
            path = [node]
            while (before := previous[path[-1]]) is not None:
                path.append(before)
            return path[::-1]
        for nxt in graph.get(node, ()):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return [target]  # unreachable in practice: the caller saw `target` in the walk


async def _check_dependencies(
    conn: Conn, *, project_id: UUID, task_id: UUID | None, dependencies: list[UUID]
) -> list[dict[str, Any]]:
    """Validate a new dependency set for `task_id` (None: a task being created); returns the
    dependency rows (id, title, status)."""
    rows = await repository.get_project_tasks(conn, project_id=project_id, task_ids=dependencies)
    found = {UUID(str(row["id"])) for row in rows}
    missing = [dep for dep in dependencies if dep not in found]
    if missing:
        # Same answer whether the id is unknown or belongs to another project (ids don't leak).
        raise Invalid(
            "dependencies must be tasks of the same project; not found there: "
            + ", ".join(str(dep) for dep in missing),
            errors=[
                {
                    "loc": ["body", "dependencies"],
                    "field": "dependencies",
                    "msg": f"task {dep} is not a task of project {project_id}",
                    "type": "value_error.unknown_task",
                }
                for dep in missing
            ],
        )
    if task_id is None:
        return rows  # a new task has no dependents, so it cannot close a cycle
    edges = await repository.reachable_edges(conn, start_ids=dependencies, target_id=task_id)
    if edges is not None:
        path = [task_id, *_shortest_path(edges, dependencies, task_id)]
        titles = await repository.get_titles(conn, task_ids=path)
        chain = " -> ".join(_label(node, titles) for node in path)
        raise Invalid(
            f"dependencies would create a cycle: {chain}",
            errors=[
                {
                    "loc": ["body", "dependencies"],
                    "field": "dependencies",
                    "msg": f"cycle: {chain}",
                    "type": "value_error.dependency_cycle",
                    "cycle": [str(node) for node in path],
                }
            ],
        )
    return rows


def _check_done(title: str, dependency_rows: list[dict[str, Any]]) -> None:
    blocking = [row for row in dependency_rows if row["status"] != DONE]
    if not blocking:
        return
    names = ", ".join(f"{row['title']!r} ({row['id']}, {row['status']})" for row in blocking)
    raise Conflict(
        f"task {title!r} cannot be done while dependencies are unfinished: {names}",
        extra={
            "blocking_tasks": [
                {"id": str(row["id"]), "title": row["title"], "status": row["status"]}
                for row in blocking
            ]
        },
    )


async def _read(conn: Conn, task_id: UUID) -> TaskRead:
    row = await repository.get_task(conn, task_id=task_id)
    if row is None:
        raise _task_not_found(task_id)
    return TaskRead(**row)


async def create_task(conn: Conn, *, principal: Principal, data: TaskCreate) -> TaskRead:
    """Create a task in a project the caller can write to."""
    await get_project_for(
        conn, principal=principal, project_id=data.project_id, permission=Permission.WRITE
    )
    if data.dependencies:
        await repository.lock_project_tasks(conn, project_id=data.project_id)
    dependency_rows = await _check_dependencies(
        conn, project_id=data.project_id, task_id=None, dependencies=data.dependencies
    )
    if data.status == DONE:
        _check_done(data.title, dependency_rows)
    task_id = await repository.insert_task(conn, data=data, created_by=principal.user_id)
    await repository.replace_dependencies(conn, task_id=task_id, depends_on=data.dependencies)
    return await _read(conn, task_id)


async def get_task(*, ctx: AppContext, principal: Principal, task_id: UUID) -> TaskRead:
    """One task, if the caller can read its project."""
    async with ctx.db.connection() as conn:
        await _authorize_task(
            conn, principal=principal, task_id=task_id, permission=Permission.READ
        )
        return await _read(conn, task_id)


async def list_tasks(
    *,
    ctx: AppContext,
    principal: Principal,
    filters: TaskFilter,
    page: PageRequest,
) -> Page[TaskRead]:
    """A project's tasks, oldest first, optionally filtered by status, priority, assignee."""
    async with ctx.db.connection() as conn:
        await get_project_for(
            conn, principal=principal, project_id=filters.project_id, permission=Permission.READ
        )
        rows, total = await repository.list_tasks(conn, filters=filters, page=page)
    return Page[TaskRead](
        items=[TaskRead(**row) for row in rows], total=total, skip=page.skip, limit=page.limit
    )


async def update_task(
    conn: Conn, *, principal: Principal, task_id: UUID, data: TaskUpdate
) -> TaskRead:
    """Partial update. New dependencies are re-checked (same project, acyclic); a task can be
    `done` only when all its dependencies are (409 listing the blocking ones)."""
    changes = data.model_dump(exclude_unset=True)
    for field in ("title", "status", "priority", "dependencies"):
        if field in changes and changes[field] is None:
            raise Invalid(
                f"{field} cannot be null",
                errors=[{"loc": ["body", field], "field": field, "msg": "may not be null"}],
            )
    project_id = await _authorize_task(
        conn, principal=principal, task_id=task_id, permission=Permission.WRITE, lock=True
    )
    current = await _read(conn, task_id)
    new_status = changes.get("status", current.status)
    dependencies: list[UUID] = changes.get("dependencies", current.dependencies)
    deps_changed = "dependencies" in changes
    if deps_changed or (new_status == DONE and current.status != DONE):
        await repository.lock_project_tasks(conn, project_id=project_id)
        dependency_rows = await _check_dependencies(
            conn,
            project_id=project_id,
            task_id=task_id if deps_changed else None,
            dependencies=dependencies,
        )
        if new_status == DONE:
            _check_done(changes.get("title", current.title), dependency_rows)
    if not changes:
        return current
    await repository.update_task(conn, task_id=task_id, changes=changes)
    if deps_changed:
        await repository.replace_dependencies(conn, task_id=task_id, depends_on=dependencies)
    return await _read(conn, task_id)


async def delete_task(conn: Conn, *, principal: Principal, task_id: UUID) -> None:
    """Delete a task; edges to and from it go with it."""
    await _authorize_task(
        conn, principal=principal, task_id=task_id, permission=Permission.WRITE, lock=True
    )
    await repository.delete_task(conn, task_id=task_id)
