"""Documents written through the API: `documents` writes the version, this queues its indexing
job in the same transaction (the job commits with the version, or neither does)."""

from __future__ import annotations

from uuid import UUID

from lorebase.auth.principal import Principal
from lorebase.content import normalize_newlines
from lorebase.context import AppContext
from lorebase.documents import service as documents
from lorebase.documents.schemas import (
    DocumentCreate,
    DocumentRead,
    DocumentUpdate,
    DocumentVersionRead,
    VersionCreate,
)
from lorebase.knowledge.enqueue import enqueue_written


async def create_document(
    *, ctx: AppContext, principal: Principal, data: DocumentCreate
) -> DocumentRead:
    """A new document at version 1.0.0; with content it is indexed by a background job."""
    async with ctx.db.transaction() as conn:
        written = await documents.create_document(conn, principal=principal, data=data)
        job_id = await enqueue_written(
            conn, written=written, kind="text", created_by=principal.user_id
        )
    text = normalize_newlines(data.content or "")
    return DocumentRead(**{**written.document, "content": text, "job_id": job_id})


async def update_document(
    *, ctx: AppContext, principal: Principal, document_id: UUID, data: DocumentUpdate
) -> DocumentRead:
    """Rename, retag or re-describe; new `content` becomes the next minor version, queued."""
    job_id = None
    async with ctx.db.transaction() as conn:
        row, written = await documents.update_document(
            conn, principal=principal, document_id=document_id, data=data
        )
        if written is not None:
            job_id = await enqueue_written(
                conn, written=written, kind="text", created_by=principal.user_id
            )
    return DocumentRead(**{**row, "job_id": job_id})


async def create_version(
    *, ctx: AppContext, principal: Principal, document_id: UUID, data: VersionCreate
) -> DocumentVersionRead:
    """A new version (major, minor or patch bump) that replaces the indexed content, queued."""
    async with ctx.db.transaction() as conn:
        written = await documents.create_version(
            conn, principal=principal, document_id=document_id, data=data
        )
        job_id = await enqueue_written(
            conn, written=written, kind="text", created_by=principal.user_id
        )
    assert written.version is not None  # the API's versions are never deduplicated
    return DocumentVersionRead(**{**written.version, "job_id": job_id})
