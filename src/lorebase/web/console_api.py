"""JSON the console pages need beyond the public API (not in the OpenAPI document): the
administrators' overview and a project's members by name. Same services and rules as the
API: the cookie session or a bearer token, RBAC, CSRF on writes, problem details."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from lorebase.api.deps import ContextDep, PrincipalDep
from lorebase.knowledge.overview import AdminOverview, admin_overview
from lorebase.projects.members import MemberDetail, MemberInvite, add_member, list_members

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("/admin/overview", response_model=AdminOverview)
async def overview(ctx: ContextDep, principal: PrincipalDep) -> AdminOverview:
    """Queue depth, jobs failed in the last day, each project's embedding space (admins)."""
    return await admin_overview(ctx=ctx, principal=principal)


@router.get("/projects/{project_id}/members", response_model=list[MemberDetail])
async def members(ctx: ContextDep, principal: PrincipalDep, project_id: UUID) -> list[MemberDetail]:
    """The project's members with their names (owners and admins)."""
    return await list_members(ctx=ctx, principal=principal, project_id=project_id)


@router.post("/projects/{project_id}/members", response_model=MemberDetail)
async def invite(
    ctx: ContextDep, principal: PrincipalDep, project_id: UUID, body: MemberInvite
) -> MemberDetail:
    """Add a member (or change their role) by username or e-mail address (owners)."""
    return await add_member(ctx=ctx, principal=principal, project_id=project_id, data=body)
