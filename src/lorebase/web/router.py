"""Console pages (one HTML shell per page, rendered by `static/console.js`) and the cookie
session: `POST /console/session` signs in and sets the HttpOnly token cookies that
`lorebase.api.deps` accepts in place of a bearer header (with a CSRF header on writes)."""

from __future__ import annotations

import html
import secrets
from importlib import resources
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from lorebase import __version__
from lorebase.api.deps import (
    CSRF_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    SESSION_COOKIE,
    AuthRateLimit,
    ContextDep,
    Page,
    PaginationDep,
    PrincipalDep,
)
from lorebase.auth import service as auth_service
from lorebase.auth.permissions import Permission
from lorebase.auth.schemas import TokenPair, UserRead
from lorebase.errors import Forbidden, Unauthorized
from lorebase.projects.service import get_project_for
from lorebase.web import console_api

STATIC = resources.files("lorebase.web") / "static"
SESSION_PATH = "/console/session"
# The refresh token lives as long as its family allows; the browser keeps it for a week.
REFRESH_MAX_AGE = 7 * 24 * 3600

PAGES: dict[str, str] = {
    "login": "Sign in",
    "projects": "Projects",
    "knowledge": "Knowledge",
    "ask": "Ask",
    "tasks": "Tasks",
    "connect": "Connect an agent",
    "admin": "Admin",
}

router = APIRouter(include_in_schema=False)


def _shell(page: str) -> str:
    template = (STATIC / "shell.html").read_text(encoding="utf-8")
    return (
        template.replace("{{page}}", page)
        .replace("{{title}}", html.escape(PAGES[page]))
        .replace("{{version}}", html.escape(__version__))
    )


def _page_route(page: str) -> None:
    async def show(response: Response) -> HTMLResponse:
        return HTMLResponse(_shell(page), headers={"Cache-Control": "no-store"})

    router.add_api_route(f"/{page}", show, methods=["GET"], response_class=HTMLResponse)


for _name in PAGES:
    _page_route(_name)


@router.get("/", response_class=HTMLResponse)
async def home() -> HTMLResponse:
    return HTMLResponse(_shell("projects"), headers={"Cache-Control": "no-store"})


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _set_session(request: Request, response: Response, pair: TokenPair) -> None:
    secure = _secure(request)
    response.set_cookie(
        SESSION_COOKIE,
        pair.access_token,
        max_age=pair.expires_in,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    # The refresh token only ever travels to the session endpoint.
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=REFRESH_MAX_AGE,
        path=SESSION_PATH,
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=REFRESH_MAX_AGE, path="/", samesite="lax", secure=secure
    )


class SessionRead(BaseModel):
    user: UserRead
    expires_in: int


@router.post(SESSION_PATH, response_model=SessionRead)
async def sign_in(
    request: Request,
    response: Response,
    ctx: ContextDep,
    _limit: AuthRateLimit,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
) -> SessionRead:
    pair = await auth_service.login(ctx=ctx, username=username, password=password)
    principal = await auth_service.authenticate(ctx=ctx, credential=pair.access_token)
    user = await auth_service.get_user(ctx=ctx, user_id=principal.user_id)
    _set_session(request, response, pair)
    return SessionRead(user=user, expires_in=pair.expires_in)


@router.post(SESSION_PATH + "/refresh", response_model=SessionRead)
async def refresh_session(request: Request, response: Response, ctx: ContextDep) -> SessionRead:
    """A new token pair from the refresh cookie (the old refresh token is spent)."""
    token = request.cookies.get(REFRESH_COOKIE)
    csrf = request.cookies.get(CSRF_COOKIE, "")
    if not csrf or not secrets.compare_digest(
        csrf.encode(), request.headers.get(CSRF_HEADER, "").encode()
    ):
        raise Forbidden("missing or wrong CSRF token (X-CSRF-Token)")
    if not token:
        raise Unauthorized("no console session")
    pair = await auth_service.refresh(ctx=ctx, refresh_token=token)
    principal = await auth_service.authenticate(ctx=ctx, credential=pair.access_token)
    user = await auth_service.get_user(ctx=ctx, user_id=principal.user_id)
    _set_session(request, response, pair)
    return SessionRead(user=user, expires_in=pair.expires_in)


@router.delete(SESSION_PATH, status_code=204)
async def sign_out() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path=SESSION_PATH)
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


class RoleRead(BaseModel):
    project_id: UUID
    role: Literal["owner", "editor", "viewer"] | None
    is_admin: bool


@router.get("/console/projects/{project_id}/role", response_model=RoleRead)
async def my_role(ctx: ContextDep, principal: PrincipalDep, project_id: UUID) -> RoleRead:
    """The caller's role in a project, so the console shows only the controls it allows."""
    access = await get_project_for(
        ctx.db, principal=principal, project_id=project_id, permission=Permission.READ
    )
    return RoleRead(project_id=project_id, role=access.role, is_admin=principal.is_admin)


@router.get("/console/users", response_model=Page[UserRead])
async def list_users(
    ctx: ContextDep, principal: PrincipalDep, page: PaginationDep
) -> Page[UserRead]:
    """Users, for the admin page (administrators only)."""
    items, total = await auth_service.list_users(
        ctx=ctx, principal=principal, skip=page.skip, limit=page.limit
    )
    return Page(items=items, total=total, skip=page.skip, limit=page.limit)


def install_console(app: FastAPI) -> None:
    """Mount the console pages at `/` and its assets at `/static/console`."""
    app.include_router(router)
    app.include_router(console_api.router)
    app.mount("/static/console", StaticFiles(directory=str(STATIC)), name="console-static")
