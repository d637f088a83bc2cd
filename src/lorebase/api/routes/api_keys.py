"""/api-keys: mint (secret shown once), list, read, revoke."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from lorebase.api.deps import ContextDep, Page, PaginationDep, PrincipalDep
from lorebase.auth import api_keys
from lorebase.auth.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyRead

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.post("", status_code=201, response_model=ApiKeyCreated)
async def create_key(ctx: ContextDep, principal: PrincipalDep, body: ApiKeyCreate) -> ApiKeyCreated:
    return await api_keys.create_api_key(ctx=ctx, principal=principal, data=body)


@router.get("", response_model=Page[ApiKeyRead])
async def list_keys(
    ctx: ContextDep, principal: PrincipalDep, page: PaginationDep
) -> Page[ApiKeyRead]:
    items, total = await api_keys.list_api_keys(
        ctx=ctx, principal=principal, skip=page.skip, limit=page.limit
    )
    return Page(items=items, total=total, skip=page.skip, limit=page.limit)


@router.get("/{key_id}", response_model=ApiKeyRead)
async def get_key(ctx: ContextDep, principal: PrincipalDep, key_id: UUID) -> ApiKeyRead:
    return await api_keys.get_api_key(ctx=ctx, principal=principal, key_id=key_id)


@router.delete("/{key_id}", status_code=204)
async def revoke_key(ctx: ContextDep, principal: PrincipalDep, key_id: UUID) -> Response:
    await api_keys.revoke_api_key(ctx=ctx, principal=principal, key_id=key_id)
    return Response(status_code=204)
