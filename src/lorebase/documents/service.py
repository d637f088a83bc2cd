"""Documents and their versions: CRUD, version history, and re-indexing on new content."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.db import Conn
from lorebase.documents import repository
from lorebase.documents.models import FIRST_VERSION, Bump, Version
from lorebase.documents.schemas import (
    DocumentCreate,
    DocumentRead,
    DocumentUpdate,
    DocumentVersionRead,
    VersionCreate,
)
from lorebase.errors import Invalid, NotFound
from lorebase.knowledge.enqueue import enqueue_index
from lorebase.knowledge.extract import BINARY_FORMATS, FORMATS
from lorebase.knowledge.extract.code import language_for
from lorebase.knowledge.pipeline import sha256
from lorebase.projects.service import bump_corpus_generation, get_project_for

_TEXT_FORMATS = FORMATS - BINARY_FORMATS


def _read(row: dict[str, Any], **extra: Any) -> DocumentRead:
    return DocumentRead(**{**row, **extra})


async def _document_for(
    conn: Conn, *, principal: Principal, document_id: UUID, permission: Permission
) -> dict[str, Any]:
    """The document if the caller holds `permission` on its project (404 otherwise)."""
    row = await repository.get_document(conn, document_id=document_id)
    if row is None:
        raise NotFound("document not found")
    try:
        await get_project_for(
            conn, principal=principal, project_id=row["project_id"], permission=permission
        )
    except NotFound:
        raise NotFound("document not found") from None
    return row


def _text_version_meta(
    document_type: str, name: str, previous: dict[str, Any] | None
) -> dict[str, Any]:
    """How API-written text is indexed: its type when that is a text format, else Markdown."""
    fmt = document_type if document_type in _TEXT_FORMATS else "markdown"
    language = (previous or {}).get("language") or (language_for(name) if fmt == "code" else None)
    return {"format": fmt, "language": language, "source": {"source": name}}


async def _add_text_version(
    conn: Conn,
    *,
    document: dict[str, Any],
    content: str,
    bump: Bump,
    created_by: UUID,
) -> tuple[dict[str, Any], dict[str, Any], UUID]:
    """Store `content` as the next version and queue its indexing."""
    await repository.advisory_lock(conn, str(document["id"]), "version")
    current = await repository.get_document(conn, document_id=document["id"], for_update=True)
    if current is None:
        raise NotFound("document not found")
    previous = await repository.get_version(conn, document_id=document["id"], version=None)
    version = Version.parse(current["version"]).bump(bump)
    text = content.replace("\r\n", "\n").replace("\r", "\n")
    content_hash = sha256(content)
    meta = _text_version_meta(
        current["type"], current["name"], previous["metadata"] if previous else None
    )
    version_row = await repository.insert_version(
        conn,
        document_id=current["id"],
        version=version,
        content=text,
        raw=None,
        mime_type="text/plain",
        content_hash=content_hash,
        size_bytes=len(content.encode()),
        metadata=meta,
        created_by=created_by,
    )
    updated = await repository.update_document(
        conn,
        document_id=current["id"],
        changes={"version": version, "content_hash": content_hash, "status": "pending"},
    )
    assert updated is not None
    job_id = await enqueue_index(
        conn,
        project_id=current["project_id"],
        document_id=current["id"],
        version_id=version_row["id"],
        kind="text",
        created_by=created_by,
    )
    return updated, version_row, job_id


async def create_document(
    *, ctx: AppContext, principal: Principal, data: DocumentCreate
) -> DocumentRead:
    """A new document at version 1.0.0; with content it is indexed by a background job."""
    content = data.content or ""
    text = content.replace("\r\n", "\n").replace("\r", "\n")
    async with ctx.db.transaction() as conn:
        await get_project_for(
            conn, principal=principal, project_id=data.project_id, permission=Permission.WRITE
        )
        document = await repository.insert_document(
            conn,
            project_id=data.project_id,
            name=data.name,
            type=data.type,
            tags=list(data.tags),
            status="pending" if text.strip() else "ready",
            version=FIRST_VERSION,
            content_hash=sha256(content),
            source_uri=None,
            metadata=data.metadata,
            created_by=principal.user_id,
        )
        version_row = await repository.insert_version(
            conn,
            document_id=document["id"],
            version=FIRST_VERSION,
            content=text,
            raw=None,
            mime_type="text/plain",
            content_hash=sha256(content),
            size_bytes=len(content.encode()),
            metadata=_text_version_meta(data.type, data.name, None),
            created_by=principal.user_id,
        )
        job_id = None
        if text.strip():
            job_id = await enqueue_index(
                conn,
                project_id=data.project_id,
                document_id=document["id"],
                version_id=version_row["id"],
                kind="text",
                created_by=principal.user_id,
            )
    return _read(document, content=text, job_id=job_id)


async def list_documents(
    *,
    ctx: AppContext,
    principal: Principal,
    project_id: UUID,
    skip: int = 0,
    limit: int = 50,
    type: str | None = None,
    tag: str | None = None,
    status: str | None = None,
    name: str | None = None,
) -> tuple[list[DocumentRead], int]:
    """A project's documents, newest first (without content)."""
    async with ctx.db.connection() as conn:
        await get_project_for(
            conn, principal=principal, project_id=project_id, permission=Permission.READ
        )
        rows, total = await repository.list_documents(
            conn,
            project_id=project_id,
            skip=skip,
            limit=limit,
            type=type,
            tag=tag,
            status=status,
            name=name,
        )
    return [_read(row) for row in rows], total


async def get_document(
    *, ctx: AppContext, principal: Principal, document_id: UUID, version: str | None = None
) -> DocumentRead:
    """The document with the content of `version` (default: the latest)."""
    try:
        wanted = Version.parse(version) if version is not None else None
    except ValueError as exc:
        raise Invalid(str(exc), errors=[{"field": "version", "msg": str(exc)}]) from None
    async with ctx.db.connection() as conn:
        row = await _document_for(
            conn, principal=principal, document_id=document_id, permission=Permission.READ
        )
        version_row = await repository.get_version(
            conn,
            document_id=document_id,
            version=wanted or Version.parse(row["version"]),
            with_content=True,
        )
    if version_row is None:
        raise NotFound(f"version {version} of this document not found")
    return _read(
        row,
        version=version_row["version"],
        content_hash=version_row["content_hash"],
        content=version_row["content"],
    )


async def update_document(
    *, ctx: AppContext, principal: Principal, document_id: UUID, data: DocumentUpdate
) -> DocumentRead:
    """Rename, retag or re-describe; new `content` becomes the next minor version."""
    changes = data.model_dump(exclude_unset=True)
    content = changes.pop("content", None)
    for field in ("name", "tags", "metadata"):
        if field in changes and changes[field] is None:
            raise Invalid(f"{field} cannot be null", errors=[{"field": field}])
    job_id = None
    async with ctx.db.transaction() as conn:
        row = await _document_for(
            conn, principal=principal, document_id=document_id, permission=Permission.WRITE
        )
        if changes:
            updated = await repository.update_document(
                conn, document_id=document_id, changes=changes
            )
            assert updated is not None
            row = updated
            if "tags" in changes:
                await bump_corpus_generation(conn, project_id=row["project_id"])
        if content is not None:
            row, _, job_id = await _add_text_version(
                conn, document=row, content=content, bump="minor", created_by=principal.user_id
            )
    return _read(row, job_id=job_id)


async def delete_document(*, ctx: AppContext, principal: Principal, document_id: UUID) -> None:
    """Delete the document, its versions and its chunks."""
    async with ctx.db.transaction() as conn:
        row = await _document_for(
            conn, principal=principal, document_id=document_id, permission=Permission.WRITE
        )
        await repository.delete_document(conn, document_id=document_id)
        await bump_corpus_generation(conn, project_id=row["project_id"])


async def create_version(
    *, ctx: AppContext, principal: Principal, document_id: UUID, data: VersionCreate
) -> DocumentVersionRead:
    """A new version (major, minor or patch bump) that replaces the indexed content."""
    async with ctx.db.transaction() as conn:
        row = await _document_for(
            conn, principal=principal, document_id=document_id, permission=Permission.WRITE
        )
        _, version_row, job_id = await _add_text_version(
            conn, document=row, content=data.content, bump=data.bump, created_by=principal.user_id
        )
    return DocumentVersionRead(**version_row, job_id=job_id)


async def list_versions(
    *, ctx: AppContext, principal: Principal, document_id: UUID, skip: int = 0, limit: int = 50
) -> tuple[list[DocumentVersionRead], int]:
    """Version history, newest first."""
    async with ctx.db.connection() as conn:
        await _document_for(
            conn, principal=principal, document_id=document_id, permission=Permission.READ
        )
        rows, total = await repository.list_versions(
            conn, document_id=document_id, skip=skip, limit=limit
        )
    return [DocumentVersionRead(**row) for row in rows], total
