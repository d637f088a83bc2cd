"""Uploaded files and texts: detect, deduplicate, version, and queue for indexing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from lorebase.db import Conn
from lorebase.documents import repository as documents
from lorebase.documents.models import FIRST_VERSION, Version
from lorebase.knowledge.detect import FileType, detect_file
from lorebase.knowledge.enqueue import enqueue_index
from lorebase.knowledge.extract import FORMATS
from lorebase.knowledge.pipeline import sha256

# Formats whose extracted text is the upload itself: only the text is kept. Others keep the
# original bytes too (the extracted text is filled in by the indexing job).
TEXT_AS_IS = frozenset({"markdown", "text", "code"})


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file as the route received it (the service never sees the web framework)."""

    name: str
    data: bytes
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class Incoming:
    name: str
    data: bytes
    file_type: FileType
    content_hash: str


@dataclass(frozen=True, slots=True)
class Accepted:
    document: dict[str, Any]
    job_id: UUID | None
    duplicate: bool


async def inspect_files(files: list[UploadedFile]) -> list[Incoming]:
    """Detect every file's real type off the event loop; raises `UnsupportedFile`."""

    def work() -> list[Incoming]:
        return [
            Incoming(
                name=file.name,
                data=file.data,
                file_type=detect_file(file.name, file.data),
                content_hash=sha256(file.data),
            )
            for file in files
        ]

    return await asyncio.to_thread(work)


def text_file(name: str, text: str) -> Incoming:
    """An `ingest_text` body as if it were a file (Markdown unless the name says otherwise)."""
    data = text.encode("utf-8")
    file_type = detect_file(name, data)
    if file_type.format == "text" and "." not in name.rsplit("/", 1)[-1]:
        file_type = FileType("markdown", "text/markdown", text=file_type.text)
    return Incoming(name=name, data=data, file_type=file_type, content_hash=sha256(data))


async def accept(
    conn: Conn,
    *,
    project_id: UUID,
    item: Incoming,
    tags: list[str],
    kind: Literal["upload", "text"],
    created_by: UUID | None,
) -> Accepted:
    """Identical content already in the project: that document, no job. The same name with
    new content: the next minor version. Otherwise a new document. Caller's transaction."""
    await documents.advisory_lock(conn, str(project_id), "hash", item.content_hash)
    await documents.advisory_lock(conn, str(project_id), "name", item.name)
    existing = await documents.find_by_hash(
        conn, project_id=project_id, content_hash=item.content_hash
    )
    if existing is not None:
        if existing["status"] != "failed":
            return Accepted(document=existing, job_id=None, duplicate=True)
        # The same content failed before (a provider outage outlasting the retries): try again.
        latest = await documents.get_version(conn, document_id=existing["id"], version=None)
        assert latest is not None
        job_id = await enqueue_index(
            conn,
            project_id=project_id,
            document_id=existing["id"],
            version_id=latest["id"],
            kind=kind,
            created_by=created_by,
        )
        await documents.merge_metadata(
            conn, document_id=existing["id"], status="pending", metadata={}, remove=["error"]
        )
        refreshed = await documents.get_document(conn, document_id=existing["id"])
        assert refreshed is not None
        return Accepted(document=refreshed, job_id=job_id, duplicate=False)

    file_type = item.file_type
    keep_text = file_type.format in TEXT_AS_IS
    version_meta: dict[str, Any] = {
        "format": file_type.format,
        "language": file_type.language,
        "source": {"source": item.name},
    }
    doc_meta: dict[str, Any] = {
        "filename": item.name,
        "mime_type": file_type.mime_type,
        "size_bytes": len(item.data),
    }
    if file_type.language:
        doc_meta["language"] = file_type.language
    same_name = await documents.find_by_name(
        conn, project_id=project_id, name=item.name, for_update=True
    )
    if same_name is None:
        version = FIRST_VERSION
        document = await documents.insert_document(
            conn,
            project_id=project_id,
            name=item.name,
            type=file_type.format,
            tags=tags,
            status="pending",
            version=version,
            content_hash=item.content_hash,
            source_uri=None,
            metadata=doc_meta,
            created_by=created_by,
        )
    else:
        version = Version.parse(same_name["version"]).bump("minor")
        updated = await documents.update_document(
            conn,
            document_id=same_name["id"],
            changes={
                "version": version,
                "content_hash": item.content_hash,
                "status": "pending",
                "type": file_type.format if file_type.format in FORMATS else same_name["type"],
                "tags": list(dict.fromkeys([*same_name["tags"], *tags])),
                "metadata": {
                    **{k: v for k, v in same_name["metadata"].items() if k != "error"},
                    **doc_meta,
                },
            },
        )
        assert updated is not None
        document = updated
    version_row = await documents.insert_version(
        conn,
        document_id=document["id"],
        version=version,
        content=file_type.text if keep_text else None,
        raw=None if keep_text else item.data,
        mime_type=file_type.mime_type,
        content_hash=item.content_hash,
        size_bytes=len(item.data),
        metadata=version_meta,
        created_by=created_by,
    )
    job_id = await enqueue_index(
        conn,
        project_id=project_id,
        document_id=document["id"],
        version_id=version_row["id"],
        kind=kind,
        created_by=created_by,
    )
    return Accepted(document=document, job_id=job_id, duplicate=False)
