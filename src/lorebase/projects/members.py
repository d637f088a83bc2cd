"""A project's members by name: list them, and add one by username or e-mail address (the
console's members form; the API's PUT/DELETE by user id stay the one way to write)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.auth.service import find_user
from lorebase.context import AppContext
from lorebase.projects import repository
from lorebase.projects.schemas import MemberRead, MemberUpsert
from lorebase.projects.service import get_project_for, set_member

Role = Literal["owner", "editor", "viewer"]


class MemberDetail(BaseModel):
    user_id: UUID
    username: str
    email: str | None
    role: Role
    created_at: datetime
    updated_at: datetime


class MemberInvite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=320, description="Username or e-mail address.")
    role: Role


async def list_members(
    *, ctx: AppContext, principal: Principal, project_id: UUID
) -> list[MemberDetail]:
    """Owners (and administrators) see who is in the project."""
    async with ctx.db.connection() as conn:
        await get_project_for(
            conn, principal=principal, project_id=project_id, permission=Permission.MANAGE
        )
        rows = await repository.list_members(conn, project_id=project_id)
    return [MemberDetail(**row) for row in rows]


async def add_member(
    *, ctx: AppContext, principal: Principal, project_id: UUID, data: MemberInvite
) -> MemberDetail:
    """Give the user named by username or e-mail a role (owners only; the caller's right is
    checked before the name is looked up, so names do not leak to non-owners)."""
    async with ctx.db.transaction() as conn:
        await get_project_for(
            conn, principal=principal, project_id=project_id, permission=Permission.MANAGE
        )
        user = await find_user(conn, login=data.user)
        member: MemberRead = await set_member(
            conn,
            principal=principal,
            project_id=project_id,
            user_id=user.id,
            data=MemberUpsert(role=data.role),
        )
    return MemberDetail(
        user_id=user.id,
        username=user.username,
        email=user.email,
        role=member.role,
        created_at=member.created_at,
        updated_at=member.updated_at,
    )
