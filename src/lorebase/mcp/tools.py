"""The SPEC's MCP tools. Each one parses its arguments, calls ONE service function (the same
one the matching REST route calls) with the caller's Principal, and returns that route's JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import UUID

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from lorebase.mcp.runtime import Caller, invoke
from lorebase.mcp.schemas import Page
from lorebase.projects import service as projects
from lorebase.projects.schemas import ProjectCreate, ProjectRead
from lorebase.tasks import service as tasks
from lorebase.tasks.schemas import TaskCreate, TaskPriority, TaskRead, TaskStatus, TaskUpdate

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)

Skip = Annotated[int, Field(ge=0, le=1_000_000, description="Items to skip (paging).")]
Limit = Annotated[int, Field(ge=1, le=500, description="Items to return (paging).")]
ProjectId = Annotated[UUID, Field(description="The project's id.")]
TaskId = Annotated[UUID, Field(description="The task's id.")]
TaskIds = Annotated[
    list[UUID] | None,
    Field(max_length=100, description="Ids of tasks (same project) that must be done first."),
]
Tags = Annotated[
    list[str] | None, Field(max_length=50, description="Free-form labels, 1-64 characters each.")
]


async def list_projects(
    ctx: Context, skip: Skip = 0, limit: Limit = 50
) -> Annotated[CallToolResult, Page[ProjectRead]]:
    """List the projects you are a member of (every project for an admin)."""

    async def run(caller: Caller) -> Page[ProjectRead]:
        items, total = await projects.list_projects(
            ctx=caller.ctx, principal=caller.principal, skip=skip, limit=limit
        )
        return Page[ProjectRead](items=items, total=total, skip=skip, limit=limit)

    return await invoke(ctx, "list_projects", run)


async def create_project(
    ctx: Context,
    name: Annotated[str, Field(min_length=1, max_length=200, description="Project name.")],
    description: Annotated[
        str | None, Field(max_length=10_000, description="What the project is about.")
    ] = None,
    tags: Tags = None,
) -> Annotated[CallToolResult, ProjectRead]:
    """Create a project you own: a knowledge base plus tasks for one body of work."""

    async def run(caller: Caller) -> ProjectRead:
        data = ProjectCreate(name=name, description=description, tags=tags or [])
        return await projects.create_project(ctx=caller.ctx, principal=caller.principal, data=data)

    return await invoke(ctx, "create_project", run)


def _sent_arguments(ctx: Context) -> set[str]:
    """Argument names the client actually sent, so a partial update can tell "leave as is"
    (absent) from "clear" (null), as the REST PUT does."""
    params = ctx.request_context.params or {}
    arguments = params.get("arguments")
    return set(arguments) if isinstance(arguments, dict) else set()


async def list_tasks(
    ctx: Context,
    project_id: ProjectId,
    status: Annotated[TaskStatus | None, Field(description="Only tasks in this status.")] = None,
    skip: Skip = 0,
    limit: Limit = 50,
) -> Annotated[CallToolResult, Page[TaskRead]]:
    """List a project's tasks, optionally only those in one status."""

    async def run(caller: Caller) -> Page[TaskRead]:
        items, total = await tasks.list_tasks(
            ctx=caller.ctx,
            principal=caller.principal,
            project_id=project_id,
            status=status,
            skip=skip,
            limit=limit,
        )
        return Page[TaskRead](items=items, total=total, skip=skip, limit=limit)

    return await invoke(ctx, "list_tasks", run)


async def create_task(
    ctx: Context,
    project_id: ProjectId,
    title: Annotated[str, Field(min_length=1, max_length=500, description="What to do.")],
    description: Annotated[str | None, Field(max_length=20_000, description="Details.")] = None,
    priority: Annotated[TaskPriority, Field(description="How urgent it is.")] = "medium",
    dependencies: TaskIds = None,
) -> Annotated[CallToolResult, TaskRead]:
    """Create a task (status `todo`) in a project; dependencies must be acyclic."""

    async def run(caller: Caller) -> TaskRead:
        data = TaskCreate(
            project_id=project_id,
            title=title,
            description=description,
            priority=priority,
            dependencies=dependencies or [],
        )
        return await tasks.create_task(ctx=caller.ctx, principal=caller.principal, data=data)

    return await invoke(ctx, "create_task", run)


async def update_task(
    ctx: Context,
    task_id: TaskId,
    title: Annotated[str | None, Field(min_length=1, max_length=500)] = None,
    description: Annotated[
        str | None, Field(max_length=20_000, description="Send null to clear.")
    ] = None,
    status: Annotated[
        TaskStatus | None, Field(description="`done` needs every dependency done.")
    ] = None,
    priority: TaskPriority | None = None,
    assignee: Annotated[
        str | None, Field(min_length=1, max_length=200, description="Send null to clear.")
    ] = None,
    dependencies: Annotated[
        list[UUID] | None, Field(max_length=100, description="Replaces the whole set.")
    ] = None,
) -> Annotated[CallToolResult, TaskRead]:
    """Change a task: only the arguments you send change (null clears description/assignee)."""
    values: dict[str, Any] = {
        "title": title,
        "description": description,
        "status": status,
        "priority": priority,
        "assignee": assignee,
        "dependencies": dependencies,
    }
    sent = _sent_arguments(ctx)
    changes = {name: value for name, value in values.items() if name in sent}

    async def run(caller: Caller) -> TaskRead:
        data = TaskUpdate.model_validate(changes)
        return await tasks.update_task(
            ctx=caller.ctx, principal=caller.principal, task_id=task_id, data=data
        )

    return await invoke(ctx, "update_task", run)


TOOLS: list[tuple[Callable[..., Awaitable[CallToolResult]], ToolAnnotations]] = [
    (list_projects, READ_ONLY),
    (create_project, WRITES),
    (list_tasks, READ_ONLY),
    (create_task, WRITES),
    (update_task, WRITES),
]
