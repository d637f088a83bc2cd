"""Uploaded files and texts: detect, deduplicate, version, and queue for indexing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from lorebase.content import TEXT_AS_IS, sha256
from lorebase.db import Conn
from lorebase.documents.models import NewContent
from lorebase.documents.service import write_version
from lorebase.knowledge.detect import FileType, detect_file
from lorebase.knowledge.enqueue import enqueue_written


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
    """Store the file as a document version (`write_version`'s rules: identical content is
    that document and gets no job) and queue its indexing. Caller's transaction."""
    file_type = item.file_type
    keep_text = file_type.format in TEXT_AS_IS
    doc_meta: dict[str, Any] = {
        "filename": item.name,
        "mime_type": file_type.mime_type,
        "size_bytes": len(item.data),
    }
    if file_type.language:
        doc_meta["language"] = file_type.language
    written = await write_version(
        conn,
        project_id=project_id,
        name=item.name,
        type=file_type.format,
        tags=tags,
        metadata=doc_meta,
        content=NewContent(
            content_hash=item.content_hash,
            size_bytes=len(item.data),
            mime_type=file_type.mime_type,
            text=file_type.text if keep_text else None,
            raw=None if keep_text else item.data,
            metadata={
                "format": file_type.format,
                "language": file_type.language,
                "source": {"source": item.name},
            },
        ),
        created_by=created_by,
    )
    job_id = await enqueue_written(conn, written=written, kind=kind, created_by=created_by)
    return Accepted(
        document=written.document, job_id=job_id, duplicate=written.outcome == "unchanged"
    )
