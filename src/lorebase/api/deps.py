"""`Annotated` dependency aliases used by the routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from lorebase.auth.api_keys import API_KEY_PREFIX
from lorebase.auth.principal import Principal
from lorebase.auth.service import authenticate
from lorebase.cache import text_key
from lorebase.context import AppContext
from lorebase.errors import Unauthorized
from lorebase.ratelimit import RateLimiter


# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def` in the
# thread pool, a thread hand-off per request that cost ~10% of a read (py-spy, bench/RESULTS.md).
async def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def credential_of(headers: Mapping[str, str]) -> str | None:
    """The bearer token or API key a request carries (None: anonymous); 401 when malformed."""
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    key = headers.get("x-api-key")
    if key is None:
        return None
    # X-API-Key carries API keys only, never a JWT (whose expiry/revocation rules differ).
    if not key.strip().startswith(API_KEY_PREFIX):
        raise Unauthorized("X-API-Key must hold an API key (lb_...)")
    return key.strip()


async def get_principal(request: Request) -> Principal:
    # The context is read here rather than through ContextDep: one dependency fewer for
    # FastAPI to solve on every authenticated request.
    known = request.scope.get("state", {}).get("principal")
    if isinstance(known, Principal):
        return known  # authenticated by the body guard (api.guard) before routing
    credential = credential_of(request.headers)
    if credential is None:
        raise Unauthorized("authentication required")
    principal = await authenticate(ctx=request.app.state.ctx, credential=credential)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class Pagination(BaseModel):
    skip: int
    limit: int


async def get_pagination(
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Pagination:
    return Pagination(skip=skip, limit=limit)


PaginationDep = Annotated[Pagination, Depends(get_pagination)]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """Every list endpoint answers `{items, total, skip, limit}`."""

    items: list[T]
    total: int
    skip: int
    limit: int


# --- rate limits (token buckets in Redis; see lorebase.ratelimit) ---------------------------


async def limit_query(ctx: ContextDep, principal: PrincipalDep) -> None:
    """`rate_limit_query` per user or API key (POST /rag/query)."""
    await RateLimiter(ctx.cache).enforce(
        name="query", who=principal.rate_key, rate=ctx.settings.rate_limit_query
    )


async def limit_ingest(ctx: ContextDep, principal: PrincipalDep) -> None:
    """`rate_limit_ingest` per user or API key (/knowledge/*, POST /documents, new versions)."""
    await RateLimiter(ctx.cache).enforce(
        name="ingest", who=principal.rate_key, rate=ctx.settings.rate_limit_ingest
    )


async def limit_auth(request: Request, ctx: ContextDep) -> None:
    """`rate_limit_auth` per client IP + username (POST /auth/token; the caller is anonymous).
    Starlette caches the parsed form, so the route reads it again for free."""
    form = await request.form()
    username = form.get("username")
    name = username.strip().lower() if isinstance(username, str) else ""
    client_ip = request.client.host if request.client else "unknown"
    await RateLimiter(ctx.cache).enforce(
        name="auth", who=f"{client_ip}|{text_key(name)}", rate=ctx.settings.rate_limit_auth
    )


# Use as a parameter (`_limit: QueryRateLimit`) or in `dependencies=[...]` via the functions.
QueryRateLimit = Annotated[None, Depends(limit_query)]
IngestRateLimit = Annotated[None, Depends(limit_ingest)]
AuthRateLimit = Annotated[None, Depends(limit_auth)]
