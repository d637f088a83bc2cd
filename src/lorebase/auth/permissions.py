"""Project roles and what they allow (RBAC); API-key scopes narrow them further."""

from __future__ import annotations

from enum import StrEnum

from lorebase.auth.principal import Principal


class Permission(StrEnum):
    READ = "read"  # see the project, its documents and tasks; query it
    WRITE = "write"  # ingest, edit documents and tasks
    MANAGE = "manage"  # members, project settings, delete


class Role(StrEnum):
    OWNER = "owner"
    EDITOR = "editor"
    VIEWER = "viewer"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.EDITOR: frozenset({Permission.READ, Permission.WRITE}),
    Role.OWNER: frozenset({Permission.READ, Permission.WRITE, Permission.MANAGE}),
}

SCOPE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "read": frozenset({Permission.READ}),
    "write": frozenset({Permission.READ, Permission.WRITE}),
    "admin": frozenset({Permission.READ, Permission.WRITE, Permission.MANAGE}),
}


def scope_allows(principal: Principal, permission: Permission) -> bool:
    """Whether the credential (JWT: everything; API key: its scopes) carries `permission`."""
    return any(
        permission in SCOPE_PERMISSIONS.get(scope, frozenset()) for scope in principal.scopes
    )


def role_allows(role: Role | None, permission: Permission, *, is_admin: bool = False) -> bool:
    if is_admin:
        return True
    return role is not None and permission in ROLE_PERMISSIONS[role]
