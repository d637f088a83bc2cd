"""Projects: CRUD, hierarchy, memberships, and the access check every domain uses.

A write takes the caller's connection and runs in the caller's transaction (its unit of work:
the entry point opens it, a failure anywhere rolls all of it back); a read opens its own."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.auth.permissions import Permission, Role, role_allows, scope_allows
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.db import Conn, Database
from lorebase.errors import Conflict, Forbidden, Invalid, NotFound
from lorebase.paging import Page, PageRequest
from lorebase.projects import repository
from lorebase.projects.schemas import (
    MemberRead,
    MemberUpsert,
    ProjectAccess,
    ProjectCreate,
    ProjectFilter,
    ProjectListed,
    ProjectRead,
    ProjectUpdate,
)
from lorebase.text import clean_tags


def _not_found(project_id: UUID) -> NotFound:
    return NotFound(f"project {project_id} not found")


def _check(
    principal: Principal, project_id: UUID, row: dict[str, Any] | None, permission: Permission
) -> ProjectAccess:
    """404 unless the caller may see the project; 403 if they may see but not do. The 404 for
    a project that exists is word for word the one for a project that does not."""
    if row is None:
        raise _not_found(project_id)
    if principal.project_id is not None and principal.project_id != row["id"]:
        raise _not_found(row["id"])
    role = Role(row["role"]) if row["role"] else None
    if role is None and not principal.is_admin:
        raise _not_found(row["id"])
    if not role_allows(role, permission, is_admin=principal.is_admin):
        raise Forbidden(f"your role ({role}) does not allow {permission.value} on this project")
    if not scope_allows(principal, permission):
        raise Forbidden(f"this API key's scopes do not allow {permission.value}")
    return ProjectAccess(**row)


async def get_project_for(
    db: Database | Conn, *, principal: Principal, project_id: UUID, permission: Permission
) -> ProjectAccess:
    """The project if `principal` holds `permission` on it: NotFound for non-members (ids do
    not leak), Forbidden for a member whose role or key scope lacks the permission."""
    if isinstance(db, Database):
        async with db.connection() as conn:
            row = await repository.get_project_with_role(
                conn, project_id=project_id, user_id=principal.user_id
            )
    else:
        row = await repository.get_project_with_role(
            db, project_id=project_id, user_id=principal.user_id
        )
    return _check(principal, project_id, row, permission)


async def check_project_of(
    conn: Conn,
    project_id: UUID | None,
    *,
    principal: Principal,
    permission: Permission,
    missing: NotFound,
) -> UUID:
    """`project_id` back, checked: `missing` for a thing without a project (it does not exist)
    and for one whose project the caller may not see, word for word the same, so a stranger
    cannot probe ids; Forbidden for a member whose role or key scope lacks `permission`."""
    if project_id is None:
        raise missing
    try:
        await get_project_for(
            conn, principal=principal, project_id=project_id, permission=permission
        )
    except NotFound:
        raise missing from None
    return project_id


async def row_in_project(
    conn: Conn,
    row: dict[str, Any] | None,
    *,
    principal: Principal,
    permission: Permission,
    missing: NotFound,
) -> dict[str, Any]:
    """`row` (a document, job, source...) if the caller holds `permission` on its project
    (`check_project_of`)."""
    if row is None:
        raise missing
    await check_project_of(
        conn, row["project_id"], principal=principal, permission=permission, missing=missing
    )
    return row


async def bump_corpus_generation(conn: Conn, *, project_id: UUID) -> int:
    """Mark the project's knowledge as changed; answer-cache keys include the generation."""
    return await repository.bump_corpus_generation(conn, project_id=project_id)


async def create_project(conn: Conn, *, principal: Principal, data: ProjectCreate) -> ProjectRead:
    """Create a project owned by the caller (optionally under a parent they can write to)."""
    if principal.project_id is not None:
        raise Forbidden("an API key bound to one project cannot create projects")
    if not scope_allows(principal, Permission.WRITE):
        raise Forbidden("this API key's scopes do not allow write")
    if data.parent_id is not None:
        await get_project_for(
            conn, principal=principal, project_id=data.parent_id, permission=Permission.WRITE
        )
    row = await repository.insert_project(
        conn,
        owner_id=principal.user_id,
        name=data.name,
        description=data.description,
        tags=_clean_tags(data.tags),
        status=data.status,
        parent_id=data.parent_id,
    )
    return ProjectRead(**row)


def _clean_tags(tags: list[str]) -> list[str]:
    try:
        return clean_tags(tags)
    except ValueError as exc:
        raise Invalid(str(exc), errors=[{"field": "tags"}]) from None


async def list_projects(
    *,
    ctx: AppContext,
    principal: Principal,
    filters: ProjectFilter = ProjectFilter(),
    page: PageRequest = PageRequest(),
) -> Page[ProjectListed]:
    """Projects the caller is a member of (all of them for an admin), with the caller's role."""
    async with ctx.db.connection() as conn:
        rows, total = await repository.list_projects(
            conn,
            user_id=principal.user_id,
            all_projects=principal.is_admin,
            only_project=principal.project_id,
            filters=filters,
            page=page,
        )
    return Page[ProjectListed](
        items=[ProjectListed(**row) for row in rows], total=total, skip=page.skip, limit=page.limit
    )


async def get_project(*, ctx: AppContext, principal: Principal, project_id: UUID) -> ProjectRead:
    access = await get_project_for(
        ctx.db, principal=principal, project_id=project_id, permission=Permission.READ
    )
    return ProjectRead(**access.model_dump(include=set(ProjectRead.model_fields)))


async def update_project(
    conn: Conn, *, principal: Principal, project_id: UUID, data: ProjectUpdate
) -> ProjectRead:
    """Partial update; moving under a new parent may not create a cycle."""
    changes = data.model_dump(exclude_unset=True)
    if "tags" in changes:
        changes["tags"] = _clean_tags(changes["tags"] or [])
    for field in ("name", "status"):
        if field in changes and changes[field] is None:
            raise Invalid(f"{field} cannot be null", errors=[{"field": field}])
    needed = Permission.MANAGE if "parent_id" in changes else Permission.WRITE
    access = await get_project_for(
        conn, principal=principal, project_id=project_id, permission=needed
    )
    new_parent = changes.get("parent_id")
    if new_parent is not None:
        await get_project_for(
            conn, principal=principal, project_id=new_parent, permission=Permission.WRITE
        )
        if await repository.is_ancestor_or_self(conn, candidate=new_parent, project_id=project_id):
            raise Invalid(
                "parent_id would make the project its own ancestor",
                errors=[{"field": "parent_id", "msg": "cycle"}],
            )
    if not changes:
        return ProjectRead(**access.model_dump(include=set(ProjectRead.model_fields)))
    row = await repository.update_project(conn, project_id=project_id, changes=changes)
    if row is None:
        raise _not_found(project_id)
    return ProjectRead(**row)


async def delete_project(
    conn: Conn, *, principal: Principal, project_id: UUID, cascade: bool = False
) -> None:
    """Delete a project; with children this is a 409 unless `cascade`."""
    await get_project_for(
        conn, principal=principal, project_id=project_id, permission=Permission.MANAGE
    )
    descendants = await repository.descendant_ids(conn, project_id=project_id)
    # Counts and names are not given: some children may be invisible to the caller.
    if descendants and not cascade:
        raise Conflict("project has child projects; delete them first or pass cascade=true")
    for child_id in descendants:
        try:
            await get_project_for(
                conn, principal=principal, project_id=child_id, permission=Permission.MANAGE
            )
        except (NotFound, Forbidden):
            raise Conflict(
                "project has child projects you may not delete; nothing was deleted"
            ) from None
    await repository.delete_project_tree(conn, project_id=project_id)


async def set_member(
    conn: Conn, *, principal: Principal, project_id: UUID, user_id: UUID, data: MemberUpsert
) -> MemberRead:
    """Add a member or change their role (owners only)."""
    await get_project_for(
        conn, principal=principal, project_id=project_id, permission=Permission.MANAGE
    )
    if not await repository.user_exists(conn, user_id=user_id):
        raise NotFound(f"user {user_id} not found")
    row = await repository.upsert_member(
        conn, project_id=project_id, user_id=user_id, role=data.role
    )
    if await repository.count_owners(conn, project_id=project_id) == 0:
        raise Conflict("a project must keep at least one owner")
    return MemberRead(**row)


async def remove_member(
    conn: Conn, *, principal: Principal, project_id: UUID, user_id: UUID
) -> None:
    await get_project_for(
        conn, principal=principal, project_id=project_id, permission=Permission.MANAGE
    )
    if not await repository.delete_member(conn, project_id=project_id, user_id=user_id):
        raise NotFound("membership not found")
    if await repository.count_owners(conn, project_id=project_id) == 0:
        raise Conflict("a project must keep at least one owner")
