"""/documents: CRUD, versions (`POST /documents/{id}/version`) and version history."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from lorebase.api.deps import ContextDep, IngestRateLimit, Page, PaginationDep, PrincipalDep
from lorebase.documents import service
from lorebase.documents.models import DocumentStatus
from lorebase.documents.schemas import (
    DocumentCreate,
    DocumentFilter,
    DocumentRead,
    DocumentUpdate,
    DocumentVersionRead,
    VersionCreate,
)
from lorebase.knowledge import authoring

router = APIRouter(prefix="/documents", tags=["documents"])


@router.post("", status_code=201, response_model=DocumentRead)
async def create_document(
    ctx: ContextDep, principal: PrincipalDep, _limit: IngestRateLimit, body: DocumentCreate
) -> DocumentRead:
    """Create a document (version 1.0.0); with `content` it is indexed by a background job
    whose id is in `job_id`."""
    return await authoring.create_document(ctx=ctx, principal=principal, data=body)


@router.get("", response_model=Page[DocumentRead])
async def list_documents(
    ctx: ContextDep,
    principal: PrincipalDep,
    page: PaginationDep,
    project_id: UUID,
    type: Annotated[str | None, Query(max_length=40)] = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    status: DocumentStatus | None = None,
    name: Annotated[str | None, Query(max_length=500, description="Substring match.")] = None,
) -> Page[DocumentRead]:
    filters = DocumentFilter(project_id, type=type, tag=tag, status=status, name=name)
    return await service.list_documents(ctx=ctx, principal=principal, filters=filters, page=page)


@router.get("/{document_id}", response_model=DocumentRead)
async def get_document(
    ctx: ContextDep,
    principal: PrincipalDep,
    document_id: UUID,
    version: Annotated[str | None, Query(description="e.g. 1.2.0; default the latest")] = None,
) -> DocumentRead:
    return await service.get_document(
        ctx=ctx, principal=principal, document_id=document_id, version=version
    )


@router.put("/{document_id}", response_model=DocumentRead)
async def update_document(
    ctx: ContextDep,
    principal: PrincipalDep,
    _limit: IngestRateLimit,
    document_id: UUID,
    body: DocumentUpdate,
) -> DocumentRead:
    """Rename, retag or change metadata; `content` creates the next minor version."""
    return await authoring.update_document(
        ctx=ctx, principal=principal, document_id=document_id, data=body
    )


@router.delete("/{document_id}", status_code=204)
async def delete_document(ctx: ContextDep, principal: PrincipalDep, document_id: UUID) -> Response:
    """Delete the document, all its versions and its indexed chunks."""
    await service.delete_document(ctx=ctx, principal=principal, document_id=document_id)
    return Response(status_code=204)


@router.post("/{document_id}/version", status_code=201, response_model=DocumentVersionRead)
async def create_version(
    ctx: ContextDep,
    principal: PrincipalDep,
    _limit: IngestRateLimit,
    document_id: UUID,
    body: VersionCreate,
) -> DocumentVersionRead:
    """A new version (`bump`: major, minor or patch); searching uses the latest version."""
    return await authoring.create_version(
        ctx=ctx, principal=principal, document_id=document_id, data=body
    )


@router.get("/{document_id}/versions", response_model=Page[DocumentVersionRead])
async def list_versions(
    ctx: ContextDep, principal: PrincipalDep, page: PaginationDep, document_id: UUID
) -> Page[DocumentVersionRead]:
    return await service.list_versions(
        ctx=ctx, principal=principal, document_id=document_id, skip=page.skip, limit=page.limit
    )
