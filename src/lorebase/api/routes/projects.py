"""/projects: CRUD, hierarchy and memberships."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from lorebase.api.deps import ContextDep, Page, PaginationDep, PrincipalDep
from lorebase.projects import service
from lorebase.projects.schemas import (
    MemberRead,
    MemberUpsert,
    ProjectCreate,
    ProjectFilter,
    ProjectListed,
    ProjectRead,
    ProjectUpdate,
)

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", status_code=201, response_model=ProjectRead)
async def create_project(
    ctx: ContextDep, principal: PrincipalDep, body: ProjectCreate
) -> ProjectRead:
    async with ctx.db.transaction() as conn:
        return await service.create_project(conn, principal=principal, data=body)


@router.get("", response_model=Page[ProjectListed])
async def list_projects(
    ctx: ContextDep,
    principal: PrincipalDep,
    page: PaginationDep,
    status: Literal["active", "archived"] | None = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    parent_id: UUID | None = None,
) -> Page[ProjectListed]:
    filters = ProjectFilter(status=status, tag=tag, parent_id=parent_id)
    return await service.list_projects(ctx=ctx, principal=principal, filters=filters, page=page)


@router.get("/{project_id}", response_model=ProjectRead)
async def get_project(ctx: ContextDep, principal: PrincipalDep, project_id: UUID) -> ProjectRead:
    return await service.get_project(ctx=ctx, principal=principal, project_id=project_id)


@router.put("/{project_id}", response_model=ProjectRead)
async def update_project(
    ctx: ContextDep, principal: PrincipalDep, project_id: UUID, body: ProjectUpdate
) -> ProjectRead:
    async with ctx.db.transaction() as conn:
        return await service.update_project(
            conn, principal=principal, project_id=project_id, data=body
        )


@router.delete("/{project_id}", status_code=204)
async def delete_project(
    ctx: ContextDep, principal: PrincipalDep, project_id: UUID, cascade: bool = False
) -> Response:
    async with ctx.db.transaction() as conn:
        await service.delete_project(
            conn, principal=principal, project_id=project_id, cascade=cascade
        )
    return Response(status_code=204)


@router.put("/{project_id}/members/{user_id}", response_model=MemberRead)
async def set_member(
    ctx: ContextDep, principal: PrincipalDep, project_id: UUID, user_id: UUID, body: MemberUpsert
) -> MemberRead:
    async with ctx.db.transaction() as conn:
        return await service.set_member(
            conn, principal=principal, project_id=project_id, user_id=user_id, data=body
        )


@router.delete("/{project_id}/members/{user_id}", status_code=204)
async def remove_member(
    ctx: ContextDep, principal: PrincipalDep, project_id: UUID, user_id: UUID
) -> Response:
    async with ctx.db.transaction() as conn:
        await service.remove_member(
            conn, principal=principal, project_id=project_id, user_id=user_id
        )
    return Response(status_code=204)
