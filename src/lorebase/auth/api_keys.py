"""API keys: shown once, stored as a SHA-256 digest, scoped and optionally project-bound."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lorebase.auth import repository
from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from lorebase.projects.service import get_project_for

API_KEY_PREFIX = "lb_"
Scope = Literal["read", "write", "admin"]
# `last_used_at` is written at most once per this many seconds per key, so authenticating
# with a key is a read on the hot path rather than a row update (and WAL) on every request.
LAST_USED_RESOLUTION_SECONDS = 60


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[Scope] = Field(min_length=1)
    project_id: UUID | None = None
    expires_at: datetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        # A timestamp without an offset is taken as UTC (comparing naive and aware fails).
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class ApiKeyRead(BaseModel):
    id: UUID
    name: str
    prefix: str
    scopes: list[str]
    project_id: UUID | None
    expires_at: datetime | None
    last_used_at: datetime | None
    created_at: datetime


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(description="The secret; shown only in this response.")


def _require_login(principal: Principal) -> None:
    # A leaked key must not be able to mint successors, list its siblings (their names and
    # project ids would leak other projects to a project-bound key) or revoke the owner's keys.
    if principal.api_key_id is not None:
        raise Forbidden("API keys cannot manage API keys; authenticate with a password login")


def _digest(secret: str) -> str:
    # Keys are 256-bit random tokens, so a fast digest is safe (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_api_key(
    *, ctx: AppContext, principal: Principal, data: ApiKeyCreate
) -> ApiKeyCreated:
    """Mint a key for the calling user; the secret is returned once and never stored."""
    _require_login(principal)
    if data.expires_at is not None and data.expires_at <= datetime.now(UTC):
        raise Invalid("expires_at must be in the future")
    if data.project_id is not None:
        await get_project_for(
            ctx.db, principal=principal, project_id=data.project_id, permission=Permission.READ
        )
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    cap = ctx.settings.max_api_keys_per_user
    async with ctx.db.transaction() as conn:
        if await repository.count_live_api_keys_locked(conn, user_id=principal.user_id) >= cap:
            raise Conflict(
                f"you already have {cap} live API keys, the most allowed "
                "(MAX_API_KEYS_PER_USER); revoke one first"
            )
        row = await repository.insert_api_key(
            conn,
            user_id=principal.user_id,
            name=data.name,
            prefix=secret[:10],
            key_hash=_digest(secret),
            scopes=sorted(set(data.scopes)),
            project_id=data.project_id,
            expires_at=data.expires_at,
        )
    return ApiKeyCreated(**row, key=secret)


async def list_api_keys(
    *, ctx: AppContext, principal: Principal, skip: int, limit: int
) -> tuple[list[ApiKeyRead], int]:
    """The caller's live keys (never their secrets)."""
    _require_login(principal)
    async with ctx.db.connection() as conn:
        rows, total = await repository.list_api_keys(
            conn, user_id=principal.user_id, skip=skip, limit=limit
        )
    return [ApiKeyRead(**row) for row in rows], total


async def get_api_key(*, ctx: AppContext, principal: Principal, key_id: UUID) -> ApiKeyRead:
    """One of the caller's live keys (never its secret)."""
    _require_login(principal)
    async with ctx.db.connection() as conn:
        row = await repository.get_api_key(conn, user_id=principal.user_id, key_id=key_id)
    if row is None:
        raise NotFound("API key not found")
    return ApiKeyRead(**row)


async def revoke_api_key(*, ctx: AppContext, principal: Principal, key_id: UUID) -> None:
    """Revocation takes effect on the key's next request (keys are never cached)."""
    _require_login(principal)
    async with ctx.db.transaction() as conn:
        revoked = await repository.revoke_api_key(conn, user_id=principal.user_id, key_id=key_id)
    if not revoked:
        raise NotFound("API key not found")


async def authenticate_api_key(*, ctx: AppContext, secret: str) -> Principal:
    """Resolve a key to its owner's Principal, narrowed by the key's scopes and project."""
    async with ctx.db.connection() as conn:
        row = await repository.use_api_key(
            conn, key_hash=_digest(secret), touch_after_seconds=LAST_USED_RESOLUTION_SECONDS
        )
    if row is None:
        raise Unauthorized("invalid, expired or revoked API key")
    return Principal(
        user_id=row["user_id"],
        username=row["username"],
        is_admin=row["is_admin"] and "admin" in row["scopes"],
        api_key_id=row["id"],
        scopes=frozenset(row["scopes"]),
        project_id=row["project_id"],
    )
