"""`Annotated` dependency aliases used by the routes."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Annotated

from fastapi import Depends, Query, Request

from lorebase.auth.credentials import header_credential
from lorebase.auth.principal import Principal
from lorebase.auth.service import authenticate
from lorebase.cache import text_key
from lorebase.context import AppContext
from lorebase.errors import Forbidden, Unauthorized
from lorebase.paging import DEFAULT_LIMIT, Limit, PageRequest, Skip
from lorebase.paging import Page as Page  # the routes' list envelope, shared with MCP
from lorebase.ratelimit import RateLimiter


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


def _cookies(headers: Mapping[str, str]) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def _session_credential(headers: Mapping[str, str], method: str) -> str | None:
    cookies = _cookies(headers)
    token = cookies.get(SESSION_COOKIE)
    if not token:
        return None
    if method not in _SAFE_METHODS:
        expected = cookies.get(CSRF_COOKIE, "")
        sent = headers.get(CSRF_HEADER, "")
        if not expected or not secrets.compare_digest(expected.encode(), sent.encode()):
            raise Forbidden("missing or wrong CSRF token (X-CSRF-Token) for a cookie session")
    return token


def credential_of(headers: Mapping[str, str], method: str = "GET") -> str | None:
    """The bearer token, API key or console session a request carries (None: anonymous);
    401 when malformed, 403 for a cookie session's state change without its CSRF token."""
    if headers.get("authorization") or "x-api-key" in headers:
        return header_credential(headers)
    return _session_credential(headers, method)


async def get_principal(request: Request) -> Principal:
    # The context is read here rather than through ContextDep: one dependency fewer for
    # FastAPI to solve on every authenticated request.
    known = request.scope.get("state", {}).get("principal")
    if isinstance(known, Principal):
        return known  # authenticated by the body guard (api.guard) before routing
    credential = credential_of(request.headers, request.method)
    if credential is None:
        raise Unauthorized("authentication required")
    principal = await authenticate(ctx=request.app.state.ctx, credential=credential)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_pagination(
    skip: Annotated[Skip, Query()] = 0,
    limit: Annotated[Limit, Query()] = DEFAULT_LIMIT,
) -> PageRequest:
    return PageRequest(skip=skip, limit=limit)


PaginationDep = Annotated[PageRequest, Depends(get_pagination)]

# --- rate limits (token buckets in Redis; see lorebase.ratelimit) ---------------------------


async def _limit_caller(ctx: AppContext, principal: Principal, *, name: str, rate: str) -> None:
    limiter = RateLimiter(ctx.cache)
    await limiter.enforce(name=name, who=principal.rate_key, rate=rate)
    if principal.api_key_id is not None:
        # A key spends its owner's budget too: minting keys must not multiply the limits.
        await limiter.enforce(name=name, who=f"user:{principal.user_id}", rate=rate)


async def limit_query(ctx: ContextDep, principal: PrincipalDep) -> None:
    """`rate_limit_query` per user and per API key (POST /rag/query)."""
    await _limit_caller(ctx, principal, name="query", rate=ctx.settings.rate_limit_query)


async def limit_ingest(ctx: ContextDep, principal: PrincipalDep) -> None:
    """`rate_limit_ingest` per user and per API key (/knowledge/*, POST /documents, versions)."""
    await _limit_caller(ctx, principal, name="ingest", rate=ctx.settings.rate_limit_ingest)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def limit_auth(request: Request, ctx: ContextDep) -> None:
    """POST /auth/token: `rate_limit_auth_ip` per client IP (spraying one password over many
    usernames) and `rate_limit_auth` per IP + username. Starlette caches the parsed form, so
    the route reads it again for free. Held in-process while Redis is down."""
    form = await request.form()
    username = form.get("username")
    name = username.strip().lower() if isinstance(username, str) else ""
    client_ip = _client_ip(request)
    limiter = RateLimiter(ctx.cache)
    settings = ctx.settings
    await limiter.enforce(
        name="auth-ip", who=client_ip, rate=settings.rate_limit_auth_ip, fallback=True
    )
    await limiter.enforce(
        name="auth",
        who=f"{client_ip}|{text_key(name)}",
        rate=settings.rate_limit_auth,
        fallback=True,
    )


async def _limit_client_ip(request: Request, ctx: AppContext, *, name: str, rate: str) -> None:
    await RateLimiter(ctx.cache).enforce(
        name=name, who=_client_ip(request), rate=rate, fallback=True
    )


async def limit_register(request: Request, ctx: ContextDep) -> None:
    """`rate_limit_register` per client IP (POST /auth/register)."""
    await _limit_client_ip(request, ctx, name="register", rate=ctx.settings.rate_limit_register)


async def limit_refresh(request: Request, ctx: ContextDep) -> None:
    """`rate_limit_refresh` per client IP (POST /auth/refresh)."""
    await _limit_client_ip(request, ctx, name="refresh", rate=ctx.settings.rate_limit_refresh)


# Use as a parameter (`_limit: QueryRateLimit`) or in `dependencies=[...]` via the functions.
QueryRateLimit = Annotated[None, Depends(limit_query)]
IngestRateLimit = Annotated[None, Depends(limit_ingest)]
AuthRateLimit = Annotated[None, Depends(limit_auth)]
RegisterRateLimit = Annotated[None, Depends(limit_register)]
RefreshRateLimit = Annotated[None, Depends(limit_refresh)]
