"""Registration, login, token rotation and resolving a bearer credential to a Principal."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from lorebase.auth import repository
from lorebase.auth.api_keys import API_KEY_PREFIX, authenticate_api_key
from lorebase.auth.passwords import hash_password, verify_password
from lorebase.auth.principal import Principal
from lorebase.auth.schemas import TokenPair, UserCreate, UserRead
from lorebase.auth.tokens import decode_token, encode_token
from lorebase.context import AppContext
from lorebase.db import Conn
from lorebase.errors import Conflict, Forbidden, NotFound, Unauthorized

log = logging.getLogger(__name__)


def _user_read(row: dict[str, Any]) -> UserRead:
    return UserRead(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        is_admin=row["is_admin"],
        created_at=row["created_at"],
    )


async def register_user(
    *, ctx: AppContext, data: UserCreate, is_admin: bool = False, by_operator: bool = False
) -> UserRead:
    """Create a user; 409 when the username is taken. `by_operator` (the CLI) may create
    users even when self-registration is disabled."""
    if not ctx.settings.allow_registration and not (is_admin or by_operator):
        raise Forbidden("registration is disabled on this server")
    password_hash = await hash_password(data.password.get_secret_value())
    async with ctx.db.transaction() as conn:
        row = await repository.insert_user(
            conn,
            username=data.username,
            email=data.email,
            password_hash=password_hash,
            is_admin=is_admin,
        )
    if row is None:
        raise Conflict(f"username {data.username!r} is already taken")
    log.info("user registered", extra={"user_id": str(row["id"])})
    return _user_read(row)


async def _issue_pair(
    *, ctx: AppContext, user: dict[str, Any], family_id: uuid.UUID | None = None
) -> TokenPair:
    settings = ctx.settings
    access, _ = encode_token(
        secret=ctx.secret_key,
        subject=str(user["id"]),
        token_type="access",  # noqa: S106
        ttl_seconds=settings.access_token_ttl_seconds,
        extra={"name": user["username"], "adm": bool(user["is_admin"])},
    )
    jti = uuid.uuid4()
    family = family_id or uuid.uuid4()
    refresh, claims = encode_token(
        secret=ctx.secret_key,
        subject=str(user["id"]),
        token_type="refresh",  # noqa: S106
        ttl_seconds=settings.refresh_token_ttl_seconds,
        jti=jti.hex,
        extra={"fam": family.hex},
    )
    async with ctx.db.transaction() as conn:
        await repository.insert_refresh_token(
            conn,
            jti=jti,
            user_id=user["id"],
            family_id=family,
            expires_at=datetime.fromtimestamp(claims.exp, tz=UTC),
        )
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        expires_in=settings.access_token_ttl_seconds,
    )


async def login(*, ctx: AppContext, username: str, password: str) -> TokenPair:
    """OAuth2 password flow; the same work is done whether or not the user exists."""
    async with ctx.db.connection() as conn:
        user = await repository.get_user_by_username(conn, username)
    valid = await verify_password(password, user["password_hash"] if user else None)
    if user is None or not valid or not user["is_active"]:
        raise Unauthorized("incorrect username or password")
    return await _issue_pair(ctx=ctx, user=user)


async def refresh(*, ctx: AppContext, refresh_token: str) -> TokenPair:
    """Rotate a refresh token. A token that was already spent revokes its whole family."""
    claims = decode_token(refresh_token, secret=ctx.secret_key, expected_type="refresh")
    try:
        jti = uuid.UUID(claims.jti)
    except ValueError:
        raise Unauthorized("invalid token") from None
    async with ctx.db.transaction() as conn:
        row = await repository.spend_refresh_token(conn, jti)
        if row is None:
            raise Unauthorized("invalid token")
        if row["was_used_at"] is not None or row["revoked_at"] is not None:
            await repository.revoke_family(conn, row["family_id"])
            reused = True
        else:
            reused = False
            user = await repository.get_user(conn, row["user_id"])
    if reused:
        # Committed before raising: the revocation must stick.
        log.warning("refresh token reuse; family revoked", extra={"user_id": str(row["user_id"])})
        raise Unauthorized("refresh token already used; please log in again")
    if user is None or not user["is_active"]:
        raise Unauthorized("invalid token")
    return await _issue_pair(ctx=ctx, user=user, family_id=row["family_id"])


async def get_user(*, ctx: AppContext, user_id: uuid.UUID) -> UserRead:
    async with ctx.db.connection() as conn:
        row = await repository.get_user(conn, user_id)
    if row is None:
        raise NotFound("user not found")
    return _user_read(row)


async def find_user(conn: Conn, *, login: str) -> UserRead:
    """An active user by username or e-mail address: NotFound saying so when there is none,
    Conflict when an e-mail address is shared (the username then tells them apart)."""
    rows = await repository.find_users_by_login(conn, login.strip())
    if not rows or not all(row["is_active"] for row in rows):
        raise NotFound(f"no user has the username or e-mail address {login.strip()!r}")
    if len(rows) > 1:
        raise Conflict(
            f"several users have the e-mail address {login.strip()!r}; give the username instead"
        )
    return _user_read(rows[0])


async def authenticate(*, ctx: AppContext, credential: str) -> Principal:
    """Resolve a bearer credential (access JWT or API key) to the calling Principal."""
    if credential.startswith(API_KEY_PREFIX):
        return await authenticate_api_key(ctx=ctx, secret=credential)
    claims = decode_token(
        credential, secret=ctx.secret_key, expected_type="access", cache=ctx.tokens
    )
    try:
        user_id = uuid.UUID(claims.sub)
    except ValueError:
        raise Unauthorized("invalid token") from None
    return Principal(
        user_id=user_id,
        username=str(claims.extra.get("name", "")),
        is_admin=bool(claims.extra.get("adm", False)),
    )


async def list_users(
    *, ctx: AppContext, principal: Principal, skip: int, limit: int
) -> tuple[list[UserRead], int]:
    """Every user (administrators only; an API key needs the admin scope)."""
    if not principal.is_admin or "admin" not in principal.scopes:
        raise Forbidden("only administrators can list users")
    async with ctx.db.connection() as conn:
        rows, total = await repository.list_users(conn, skip=skip, limit=limit)
    return [_user_read(row) for row in rows], total
