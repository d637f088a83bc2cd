"""The indexer's side of documents: is a source's content already stored, lock the version to
index, record its status and extracted text, drop what a source no longer has. The jobs that
call these run in `knowledge`; the SQL stays here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from lorebase.db import Conn
from lorebase.documents import repository
from lorebase.documents.models import DocumentStatus, LatestVersion
from lorebase.projects.service import bump_corpus_generation


async def unchanged_source(
    conn: Conn, *, project_id: UUID, source_uri: str, content_hash: str
) -> UUID | None:
    """The document at `source_uri` when it already holds this content (nothing to write)."""
    row = await repository.find_by_source(conn, project_id=project_id, source_uri=source_uri)
    if row is None or row["content_hash"] != content_hash or row["status"] != "ready":
        return None
    document_id: UUID = row["id"]
    return document_id


async def lock_latest(
    conn: Conn, *, document_id: UUID, version_id: UUID, with_content: bool = False
) -> LatestVersion:
    """Lock the document until commit (writers wait) and read the version to index."""
    document = await repository.get_document(conn, document_id=document_id, for_update=True)
    version = await repository.get_version_by_id(
        conn, version_id=version_id, with_content=with_content
    )
    return LatestVersion(document=document, version=version)


async def set_status(
    conn: Conn,
    *,
    document_id: UUID,
    status: DocumentStatus,
    metadata: dict[str, Any] | None = None,
    remove: Sequence[str] = (),
) -> None:
    """Set an indexing status, merge keys into the document's metadata, drop `remove` keys."""
    await repository.merge_metadata(
        conn, document_id=document_id, status=status, metadata=metadata or {}, remove=list(remove)
    )


async def store_extracted_text(
    conn: Conn, *, version_id: UUID, text: str, metadata: dict[str, Any]
) -> None:
    """Keep the text the chunks were cut from, and the extraction's metadata, on the version."""
    await repository.set_version_content(
        conn, version_id=version_id, content=text, metadata=metadata
    )


async def document_name(conn: Conn, *, document_id: UUID) -> str | None:
    row = await repository.get_document(conn, document_id=document_id)
    return None if row is None else str(row["name"])


async def delete_vanished(
    conn: Conn, *, project_id: UUID, source_prefix: str, keep: set[str]
) -> int:
    """Delete the documents under `source_prefix` whose source is not in `keep`."""
    rows = await repository.list_by_source_prefix(conn, project_id=project_id, prefix=source_prefix)
    gone = [row for row in rows if row["source_uri"] not in keep]
    for row in gone:
        await repository.delete_document(conn, document_id=row["id"])
    if gone:
        await bump_corpus_generation(conn, project_id=project_id)
    return len(gone)
