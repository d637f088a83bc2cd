"""/tasks: CRUD with filters, dependencies and the done-requires-dependencies-done rule."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from lorebase.api.deps import ContextDep, Page, PaginationDep, PrincipalDep
from lorebase.tasks import service
from lorebase.tasks.schemas import (
    TaskCreate,
    TaskFilter,
    TaskPriority,
    TaskRead,
    TaskStatus,
    TaskUpdate,
)

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.post("", status_code=201, response_model=TaskRead)
async def create_task(ctx: ContextDep, principal: PrincipalDep, body: TaskCreate) -> TaskRead:
    async with ctx.db.transaction() as conn:
        return await service.create_task(conn, principal=principal, data=body)


@router.get("", response_model=Page[TaskRead])
async def list_tasks(
    ctx: ContextDep,
    principal: PrincipalDep,
    page: PaginationDep,
    project_id: UUID,
    status: TaskStatus | None = None,
    priority: TaskPriority | None = None,
    assignee: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> Page[TaskRead]:
    filters = TaskFilter(project_id, status=status, priority=priority, assignee=assignee)
    return await service.list_tasks(ctx=ctx, principal=principal, filters=filters, page=page)


@router.get("/{task_id}", response_model=TaskRead)
async def get_task(ctx: ContextDep, principal: PrincipalDep, task_id: UUID) -> TaskRead:
    return await service.get_task(ctx=ctx, principal=principal, task_id=task_id)


@router.put("/{task_id}", response_model=TaskRead)
async def update_task(
    ctx: ContextDep, principal: PrincipalDep, task_id: UUID, body: TaskUpdate
) -> TaskRead:
    async with ctx.db.transaction() as conn:
        return await service.update_task(conn, principal=principal, task_id=task_id, data=body)


@router.delete("/{task_id}", status_code=204)
async def delete_task(ctx: ContextDep, principal: PrincipalDep, task_id: UUID) -> Response:
    async with ctx.db.transaction() as conn:
        await service.delete_task(conn, principal=principal, task_id=task_id)
    return Response(status_code=204)
