"""/auth: register, token (OAuth2 password form), refresh, me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form

from lorebase.api.deps import (
    AuthRateLimit,
    ContextDep,
    PrincipalDep,
    RefreshRateLimit,
    RegisterRateLimit,
)
from lorebase.auth import service
from lorebase.auth.schemas import RefreshRequest, TokenPair, UserCreate, UserRead

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/register", status_code=201, response_model=UserRead)
async def register(ctx: ContextDep, _limit: RegisterRateLimit, body: UserCreate) -> UserRead:
    return await service.register_user(ctx=ctx, data=body)


@router.post("/token", response_model=TokenPair)
async def token(
    ctx: ContextDep,
    _limit: AuthRateLimit,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
) -> TokenPair:
    return await service.login(ctx=ctx, username=username, password=password)


@router.post("/refresh", response_model=TokenPair)
async def refresh(ctx: ContextDep, _limit: RefreshRateLimit, body: RefreshRequest) -> TokenPair:
    return await service.refresh(ctx=ctx, refresh_token=body.refresh_token)


@router.get("/me", response_model=UserRead)
async def me(ctx: ContextDep, principal: PrincipalDep) -> UserRead:
    return await service.get_user(ctx=ctx, user_id=principal.user_id)
