"""`Annotated` dependency aliases used by the routes."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from lorebase.auth.api_keys import API_KEY_PREFIX
from lorebase.auth.principal import Principal
from lorebase.auth.service import authenticate
from lorebase.cache import text_key
from lorebase.context import AppContext
from lorebase.errors import Forbidden, Unauthorized
from lorebase.paging import DEFAULT_LIMIT, Limit, Skip
from lorebase.paging import Page as Page  # the routes' list envelope, shared with MCP
from lorebase.ratelimit import enforce_limit


# Dependencies are `async def` even when they do not await: FastAPI runs a plain `def` in the
# thread pool, a thread hand-off per request that cost ~10% of a read (py-spy, bench/RESULTS.md).
async def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


# The web console's session: HttpOnly cookies set by `POST /console/session` (lorebase.web).
# A request authenticated by cookie that changes state must echo the readable CSRF cookie in
# the CSRF header (double submit): another site can neither read the cookie nor set the header.
SESSION_COOKIE = "lb_access"
REFRESH_COOKIE = "lb_refresh"
CSRF_COOKIE = "lb_csrf"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _session_credential(request: Request) -> str | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if request.method not in _SAFE_METHODS:
        expected = request.cookies.get(CSRF_COOKIE, "")
        sent = request.headers.get(CSRF_HEADER, "")
        if not expected or not secrets.compare_digest(expected.encode(), sent.encode()):
            raise Forbidden("missing or wrong CSRF token (X-CSRF-Token) for a cookie session")
    return token


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    key = request.headers.get("x-api-key")
    if key is None:
        return _session_credential(request)
    # X-API-Key carries API keys only, never a JWT (whose expiry/revocation rules differ).
    if not key.strip().startswith(API_KEY_PREFIX):
        raise Unauthorized("X-API-Key must hold an API key (lb_...)")
    return key.strip()


async def get_principal(request: Request) -> Principal:
    # The context is read here rather than through ContextDep: one dependency fewer for
    # FastAPI to solve on every authenticated request.
    credential = _credential(request)
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
    skip: Annotated[Skip, Query()] = 0,
    limit: Annotated[Limit, Query()] = DEFAULT_LIMIT,
) -> Pagination:
    return Pagination(skip=skip, limit=limit)


PaginationDep = Annotated[Pagination, Depends(get_pagination)]

# --- rate limits (token buckets in Redis; see lorebase.ratelimit) ---------------------------


async def limit_query(ctx: ContextDep, principal: PrincipalDep) -> None:
    """`rate_limit_query` per user or API key (POST /rag/query)."""
    await enforce_limit(ctx.cache, ctx.settings, bucket="query", who=principal.rate_key)


async def limit_ingest(ctx: ContextDep, principal: PrincipalDep) -> None:
    """`rate_limit_ingest` per user or API key (/knowledge/*, POST /documents, new versions)."""
    await enforce_limit(ctx.cache, ctx.settings, bucket="ingest", who=principal.rate_key)


async def limit_auth(request: Request, ctx: ContextDep) -> None:
    """`rate_limit_auth` per client IP + username (POST /auth/token; the caller is anonymous).
    Starlette caches the parsed form, so the route reads it again for free."""
    form = await request.form()
    username = form.get("username")
    name = username.strip().lower() if isinstance(username, str) else ""
    client_ip = request.client.host if request.client else "unknown"
    await enforce_limit(ctx.cache, ctx.settings, bucket="auth", who=f"{client_ip}|{text_key(name)}")


# Use as a parameter (`_limit: QueryRateLimit`) or in `dependencies=[...]` via the functions.
QueryRateLimit = Annotated[None, Depends(limit_query)]
IngestRateLimit = Annotated[None, Depends(limit_ingest)]
AuthRateLimit = Annotated[None, Depends(limit_auth)]
