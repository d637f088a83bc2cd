"""Documents and their versions. `write_version` is the one place a version is written: every
source (uploads, crawls, git syncs, this API) calls it inside its own transaction, and queues
the indexing job in that same transaction after it returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.content import normalize_newlines, sha256, text_metadata
from lorebase.context import AppContext
from lorebase.db import Conn
from lorebase.documents import repository
from lorebase.documents.models import (
    FIRST_VERSION,
    Bump,
    DocumentStatus,
    NewContent,
    Outcome,
    Version,
    Written,
)
from lorebase.documents.schemas import (
    DocumentCreate,
    DocumentFilter,
    DocumentRead,
    DocumentUpdate,
    DocumentVersionRead,
    VersionCreate,
)
from lorebase.errors import Invalid, NotFound
from lorebase.paging import Page, PageRequest
from lorebase.projects.service import bump_corpus_generation, get_project_for, row_in_project


async def write_version(
    conn: Conn,
    *,
    project_id: UUID,
    content: NewContent,
    created_by: UUID | None,
    name: str | None = None,
    type: str | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
    source_uri: str | None = None,
    document_id: UUID | None = None,
    new_document: bool = False,
    bump: Bump = "minor",
    status: DocumentStatus = "pending",
) -> Written:
    """Create a document or its next version in the caller's transaction. The document:
    `document_id` (never deduplicated: the API asked for a version), `source_uri`,
    `new_document`, else by content then `name`. Same content: nothing is written
    ("unchanged") unless that document failed or was retired: its latest version comes back
    ("retried"). Else 1.0.0 ("added") or the `bump`ed version ("updated"). Writers of one
    name, source or document wait for each other (a transaction-scoped lock)."""
    target, by_key = await _lock_target(
        conn,
        project_id=project_id,
        name=name,
        content_hash=content.content_hash,
        source_uri=source_uri,
        document_id=document_id,
        new_document=new_document,
    )
    if target is None:
        return await _add(
            conn,
            project_id=project_id,
            name=name,
            type=type,
            tags=tags,
            metadata=metadata,
            source_uri=source_uri,
            content=content,
            status=status,
            created_by=created_by,
        )
    changes = _changes(target, status=status, tags=tags, metadata=metadata, by_key=by_key)
    if document_id is None and target["content_hash"] == content.content_hash:
        if target["status"] not in ("failed", "retired"):
            return Written(document=target, version=None, outcome="unchanged")
        document = await _update(conn, target, changes)
        latest = await repository.get_version(conn, document_id=target["id"], version=None)
        return Written(document=document, version=latest, outcome="retried")
    next_version = Version.parse(target["version"]).bump(bump)
    changes.update(version=next_version, content_hash=content.content_hash)
    if type is not None:
        changes["type"] = type
    document = await _update(conn, target, changes)
    return await _versioned(conn, document, next_version, content, created_by, "updated")


async def _lock_target(
    conn: Conn,
    *,
    project_id: UUID,
    name: str | None,
    content_hash: str,
    source_uri: str | None,
    document_id: UUID | None,
    new_document: bool,
) -> tuple[dict[str, Any] | None, bool]:
    """The document to version, locked until commit, and whether it was found by its key
    (id, source or name) rather than only by its content."""
    if document_id is not None:
        await repository.advisory_lock(conn, str(document_id), "version")
        row = await repository.get_document(conn, document_id=document_id, for_update=True)
        if row is None:
            raise NotFound("document not found")
        return row, True
    if source_uri is not None:
        await repository.advisory_lock(conn, str(project_id), source_uri)
        row = await repository.find_by_source(
            conn, project_id=project_id, source_uri=source_uri, for_update=True
        )
        return row, True
    if new_document or name is None:
        return None, False
    await repository.advisory_lock(conn, str(project_id), "hash", content_hash)
    await repository.advisory_lock(conn, str(project_id), "name", name)
    same_content = await repository.find_by_hash(
        conn, project_id=project_id, content_hash=content_hash
    )
    if same_content is not None:
        return same_content, False
    row = await repository.find_by_name(conn, project_id=project_id, name=name, for_update=True)
    return row, row is not None


async def _add(
    conn: Conn,
    *,
    project_id: UUID,
    name: str | None,
    type: str | None,
    tags: Sequence[str],
    metadata: Mapping[str, Any] | None,
    source_uri: str | None,
    content: NewContent,
    status: DocumentStatus,
    created_by: UUID | None,
) -> Written:
    if name is None or type is None:
        raise ValueError("a new document needs a name and a type")
    document = await repository.insert_document(
        conn,
        project_id=project_id,
        name=name,
        type=type,
        tags=list(tags),
        status=status,
        version=FIRST_VERSION,
        content_hash=content.content_hash,
        source_uri=source_uri,
        metadata=dict(metadata or {}),
        created_by=created_by,
    )
    return await _versioned(conn, document, FIRST_VERSION, content, created_by, "added")


def _changes(
    target: dict[str, Any],
    *,
    status: DocumentStatus,
    tags: Sequence[str],
    metadata: Mapping[str, Any] | None,
    by_key: bool,
) -> dict[str, Any]:
    """The new status; tags merged (old first) and metadata merged over the old, its stale
    `error` dropped. A document matched only by its content (another name) keeps its own."""
    kept = {key: value for key, value in target["metadata"].items() if key != "error"}
    if not by_key:
        return {"status": status, "metadata": kept}
    return {
        "status": status,
        "tags": list(dict.fromkeys([*target["tags"], *tags])),
        "metadata": {**kept, **(metadata or {})},
    }


async def _update(conn: Conn, target: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    updated = await repository.update_document(conn, document_id=target["id"], changes=changes)
    if updated is None:
        raise NotFound("document not found")
    return updated


async def _versioned(
    conn: Conn,
    document: dict[str, Any],
    version: Version,
    content: NewContent,
    created_by: UUID | None,
    outcome: Outcome,
) -> Written:
    row = await repository.insert_version(
        conn,
        document_id=document["id"],
        version=version,
        content=content,
        created_by=created_by,
    )
    return Written(document=document, version=row, outcome=outcome)


async def _document_for(
    conn: Conn, *, principal: Principal, document_id: UUID, permission: Permission
) -> dict[str, Any]:
    """The document if the caller holds `permission` on its project (404 otherwise)."""
    return await row_in_project(
        conn,
        await repository.get_document(conn, document_id=document_id),
        principal=principal,
        permission=permission,
        missing=NotFound("document not found"),
    )


async def _text_content(
    conn: Conn, *, text: str, name: str, type: str, document_id: UUID | None
) -> NewContent:
    """API-written text; a code document keeps the language its previous version had."""
    previous = None
    if document_id is not None:
        previous = await repository.get_version(conn, document_id=document_id, version=None)
    language = ((previous or {}).get("metadata") or {}).get("language")
    return NewContent(
        content_hash=sha256(text),
        size_bytes=len(text.encode()),
        mime_type="text/plain",
        text=normalize_newlines(text),
        metadata=text_metadata(name=name, type=type, language=language),
    )


async def create_document(conn: Conn, *, principal: Principal, data: DocumentCreate) -> Written:
    """A new document at version 1.0.0; with content, that version waits to be indexed."""
    await get_project_for(
        conn, principal=principal, project_id=data.project_id, permission=Permission.WRITE
    )
    text = data.content or ""
    return await write_version(
        conn,
        project_id=data.project_id,
        name=data.name,
        type=data.type,
        tags=data.tags,
        metadata=data.metadata,
        content=await _text_content(
            conn, text=text, name=data.name, type=data.type, document_id=None
        ),
        created_by=principal.user_id,
        new_document=True,
        status="pending" if text.strip() else "ready",
    )


async def list_documents(
    *,
    ctx: AppContext,
    principal: Principal,
    filters: DocumentFilter,
    page: PageRequest,
) -> Page[DocumentRead]:
    """A project's documents, newest first (without content)."""
    async with ctx.db.connection() as conn:
        await get_project_for(
            conn, principal=principal, project_id=filters.project_id, permission=Permission.READ
        )
        rows, total = await repository.list_documents(conn, filters=filters, page=page)
    items = [DocumentRead(**row) for row in rows]
    return Page[DocumentRead](items=items, total=total, skip=page.skip, limit=page.limit)


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
    fields = ("version", "content_hash", "content")
    return DocumentRead(**{**row, **{key: version_row[key] for key in fields}})


async def update_document(
    conn: Conn, *, principal: Principal, document_id: UUID, data: DocumentUpdate
) -> tuple[dict[str, Any], Written | None]:
    """Rename, retag or re-describe; new `content` becomes the next minor version (returned
    for the caller to queue). Caller's transaction."""
    changes = data.model_dump(exclude_unset=True)
    text = changes.pop("content", None)
    for field_name in ("name", "tags", "metadata"):
        if field_name in changes and changes[field_name] is None:
            raise Invalid(f"{field_name} cannot be null", errors=[{"field": field_name}])
    row = await _document_for(
        conn, principal=principal, document_id=document_id, permission=Permission.WRITE
    )
    if changes:
        row = await _update(conn, row, changes)
        if "tags" in changes:
            await bump_corpus_generation(conn, project_id=row["project_id"])
    if text is None:
        return row, None
    written = await _write_text(conn, document=row, text=text, bump="minor", by=principal)
    return written.document, written


async def delete_document(*, ctx: AppContext, principal: Principal, document_id: UUID) -> None:
    """Delete the document, its versions and its chunks."""
    async with ctx.db.transaction() as conn:
        row = await _document_for(
            conn, principal=principal, document_id=document_id, permission=Permission.WRITE
        )
        await repository.delete_document(conn, document_id=document_id)
        await bump_corpus_generation(conn, project_id=row["project_id"])


async def create_version(
    conn: Conn, *, principal: Principal, document_id: UUID, data: VersionCreate
) -> Written:
    """A new version (major, minor or patch bump) that replaces the indexed content, for the
    caller to queue. Caller's transaction."""
    row = await _document_for(
        conn, principal=principal, document_id=document_id, permission=Permission.WRITE
    )
    return await _write_text(conn, document=row, text=data.content, bump=data.bump, by=principal)


async def _write_text(
    conn: Conn, *, document: dict[str, Any], text: str, bump: Bump, by: Principal
) -> Written:
    return await write_version(
        conn,
        project_id=document["project_id"],
        document_id=document["id"],
        content=await _text_content(
            conn,
            text=text,
            name=document["name"],
            type=document["type"],
            document_id=document["id"],
        ),
        created_by=by.user_id,
        bump=bump,
    )


async def list_versions(
    *, ctx: AppContext, principal: Principal, document_id: UUID, skip: int = 0, limit: int = 50
) -> Page[DocumentVersionRead]:
    """Version history, newest first."""
    async with ctx.db.connection() as conn:
        await _document_for(
            conn, principal=principal, document_id=document_id, permission=Permission.READ
        )
        rows, total = await repository.list_versions(
            conn, document_id=document_id, skip=skip, limit=limit
        )
    items = [DocumentVersionRead(**row) for row in rows]
    return Page[DocumentVersionRead](items=items, total=total, skip=skip, limit=limit)
