"""Who is calling: a user by JWT, or a user acting through an API key."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. API keys narrow a user's rights by scope and project."""

    user_id: UUID
    username: str
    is_admin: bool = False
    api_key_id: UUID | None = None
    scopes: frozenset[str] = frozenset({"read", "write", "admin"})
    project_id: UUID | None = None  # an API key bound to one project

    @property
    def rate_key(self) -> str:
        return f"key:{self.api_key_id}" if self.api_key_id else f"user:{self.user_id}"
