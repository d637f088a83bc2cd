"""`Annotated` dependency aliases used by the routes."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query, Request
from pydantic import BaseModel

from lorebase.auth.principal import Principal
from lorebase.auth.service import authenticate
from lorebase.context import AppContext
from lorebase.errors import Unauthorized


def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[AppContext, Depends(get_context)]


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    key = request.headers.get("x-api-key")
    return key.strip() if key else None


async def get_principal(request: Request, ctx: ContextDep) -> Principal:
    credential = _credential(request)
    if credential is None:
        raise Unauthorized("authentication required")
    principal = await authenticate(ctx=ctx, credential=credential)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class Pagination(BaseModel):
    skip: int
    limit: int


def get_pagination(
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
