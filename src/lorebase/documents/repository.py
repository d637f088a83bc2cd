"""SQL for documents and document_versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from lorebase.db import Conn, one_row, page_of
from lorebase.documents.models import NewContent, Version
from lorebase.documents.schemas import DocumentFilter
from lorebase.paging import PageRequest

_DOCUMENT_COLUMNS = (
    "id, project_id, name, type, tags, status, version, content_hash, source_uri, metadata, "
    "created_by, created_at, updated_at"
)
_VERSION_COLUMNS = (
    "id, document_id, version, major, minor, patch, mime_type, content_hash, size_bytes, "
    "metadata, created_by, created_at"
)


async def insert_document(
    conn: Conn,
    *,
    project_id: UUID,
    name: str,
    type: str,
    tags: list[str],
    status: str,
    version: Version,
    content_hash: str,
    source_uri: str | None,
    metadata: dict[str, Any],
    created_by: UUID | None,
) -> dict[str, Any]:
    cursor = await conn.execute(
        f"""
        INSERT INTO documents (project_id, name, type, tags, status, version, content_hash,
                               source_uri, metadata, created_by)
        VALUES (%(project_id)s, %(name)s, %(type)s, %(tags)s, %(status)s, %(version)s,
                %(content_hash)s, %(source_uri)s, %(metadata)s, %(created_by)s)
        RETURNING {_DOCUMENT_COLUMNS}
        """,
        {
            "project_id": project_id,
            "name": name,
            "type": type,
            "tags": tags,
            "status": status,
            "version": str(version),
            "content_hash": content_hash,
            "source_uri": source_uri,
            "metadata": Jsonb(metadata),
            "created_by": created_by,
        },
    )
    return await one_row(cursor)


async def insert_version(
    conn: Conn,
    *,
    document_id: UUID,
    version: Version,
    content: NewContent,
    created_by: UUID | None,
) -> dict[str, Any]:
    cursor = await conn.execute(
        f"""
        INSERT INTO document_versions (document_id, version, major, minor, patch, content, raw,
                                       mime_type, content_hash, size_bytes, metadata, created_by)
        VALUES (%(document_id)s, %(version)s, %(major)s, %(minor)s, %(patch)s, %(content)s,
                %(raw)s, %(mime_type)s, %(content_hash)s, %(size_bytes)s, %(metadata)s,
                %(created_by)s)
        RETURNING {_VERSION_COLUMNS}
        """,
        {
            "document_id": document_id,
            "version": str(version),
            "major": version.major,
            "minor": version.minor,
            "patch": version.patch,
            "content": content.text,
            "raw": content.raw,
            "mime_type": content.mime_type,
            "content_hash": content.content_hash,
            "size_bytes": content.size_bytes,
            "metadata": Jsonb(content.metadata),
            "created_by": created_by,
        },
    )
    return await one_row(cursor)


async def get_document(
    conn: Conn, *, document_id: UUID, for_update: bool = False
) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    cursor = await conn.execute(
        f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = %s{lock}", (document_id,)
    )
    return await cursor.fetchone()


async def find_by_hash(conn: Conn, *, project_id: UUID, content_hash: str) -> dict[str, Any] | None:
    return await _first_document(
        conn, project_id, "content_hash = %s", content_hash, order="created_at"
    )


async def find_by_name(
    conn: Conn, *, project_id: UUID, name: str, for_update: bool = False
) -> dict[str, Any] | None:
    return await _first_document(
        conn,
        project_id,
        "name = %s AND source_uri IS NULL",
        name,
        order="updated_at DESC",
        for_update=for_update,
    )


async def find_by_source(
    conn: Conn, *, project_id: UUID, source_uri: str, for_update: bool = False
) -> dict[str, Any] | None:
    return await _first_document(
        conn, project_id, "source_uri = %s", source_uri, order="created_at", for_update=for_update
    )


async def _first_document(
    conn: Conn,
    project_id: UUID,
    condition: str,
    value: str,
    *,
    order: str,
    for_update: bool = False,
) -> dict[str, Any] | None:
    """The project's first document (by `order`) meeting `condition` on `value`."""
    lock = " FOR UPDATE" if for_update else ""
    cursor = await conn.execute(
        f"""
        SELECT {_DOCUMENT_COLUMNS} FROM documents
        WHERE project_id = %s AND {condition}
        ORDER BY {order} LIMIT 1{lock}
        """,
        (project_id, value),
    )
    return await cursor.fetchone()


async def list_by_source_prefix(
    conn: Conn, *, project_id: UUID, prefix: str
) -> list[dict[str, Any]]:
    """Documents whose source URI starts with `prefix` (a repository's files)."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    cursor = await conn.execute(
        f"""
        SELECT {_DOCUMENT_COLUMNS} FROM documents
        WHERE project_id = %s AND source_uri LIKE %s
        """,
        (project_id, escaped + "%"),
    )
    return await cursor.fetchall()


async def list_documents(
    conn: Conn,
    *,
    filters: DocumentFilter,
    page: PageRequest,
) -> tuple[list[dict[str, Any]], int]:
    clauses = [sql.SQL("project_id = %(project_id)s")]
    params: dict[str, Any] = {
        "project_id": filters.project_id,
        "skip": page.skip,
        "limit": page.limit,
    }
    if filters.type is not None:
        clauses.append(sql.SQL("type = %(type)s"))
        params["type"] = filters.type
    if filters.tag is not None:
        clauses.append(sql.SQL("%(tag)s = ANY(tags)"))
        params["tag"] = filters.tag
    if filters.status is not None:
        clauses.append(sql.SQL("status = %(status)s"))
        params["status"] = filters.status
    if filters.name is not None:
        clauses.append(sql.SQL("name ILIKE %(name)s"))
        params["name"] = "%" + filters.name.replace("%", "\\%").replace("_", "\\_") + "%"
    where = sql.SQL(" AND ").join(clauses)
    query = sql.SQL(
        "SELECT {columns}, count(*) OVER () AS total FROM documents WHERE {where} "
        "ORDER BY created_at DESC, id OFFSET %(skip)s LIMIT %(limit)s"
    ).format(columns=sql.SQL(_DOCUMENT_COLUMNS), where=where)
    cursor = await conn.execute(query, params)
    count = sql.SQL("SELECT count(*) AS total FROM documents WHERE {where}").format(where=where)
    return await page_of(conn, await cursor.fetchall(), skip=page.skip, count=count, params=params)


async def update_document(
    conn: Conn, *, document_id: UUID, changes: dict[str, Any]
) -> dict[str, Any] | None:
    """Set the given columns (name, type, tags, status, version, content_hash, metadata...)."""
    allowed = {"name", "type", "tags", "status", "version", "content_hash", "metadata"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot update {sorted(unknown)}")
    values = {
        key: Jsonb(value) if key == "metadata" else str(value) if key == "version" else value
        for key, value in changes.items()
    }
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(key), sql.Placeholder(key)) for key in values
    )
    cursor = await conn.execute(
        sql.SQL(
            "UPDATE documents SET {assignments}, updated_at = now() WHERE id = %(id)s "
            "RETURNING {columns}"
        ).format(assignments=assignments, columns=sql.SQL(_DOCUMENT_COLUMNS)),
        {**values, "id": document_id},
    )
    return await cursor.fetchone()


async def merge_metadata(
    conn: Conn, *, document_id: UUID, status: str, metadata: dict[str, Any], remove: list[str]
) -> None:
    """Set the status, merge keys into the metadata and drop `remove` keys."""
    await conn.execute(
        """
        UPDATE documents SET status = %s, metadata = (metadata - %s::text[]) || %s,
               updated_at = now()
        WHERE id = %s
        """,
        (status, remove, Jsonb(metadata), document_id),
    )


async def delete_document(conn: Conn, *, document_id: UUID) -> bool:
    cursor = await conn.execute("DELETE FROM documents WHERE id = %s RETURNING id", (document_id,))
    return await cursor.fetchone() is not None


async def delete_source_documents(conn: Conn, *, project_id: UUID, source_id: UUID) -> int:
    """Delete a source's documents (their versions and chunks go with them: ON DELETE CASCADE)."""
    cursor = await conn.execute(
        "DELETE FROM documents WHERE project_id = %s AND source_id = %s",
        (project_id, source_id),
    )
    return cursor.rowcount


async def link_source(
    conn: Conn, *, project_id: UUID, source_id: UUID, document_ids: Sequence[UUID]
) -> int:
    """Name `source_id` as the source of these documents, where none is named yet."""
    cursor = await conn.execute(
        """
        UPDATE documents SET source_id = %s
        WHERE project_id = %s AND id = ANY(%s) AND source_id IS NULL
        """,
        (source_id, project_id, list(document_ids)),
    )
    return cursor.rowcount


async def get_version(
    conn: Conn, *, document_id: UUID, version: Version | None, with_content: bool = False
) -> dict[str, Any] | None:
    """One version (the newest when `version` is None)."""
    columns = _VERSION_COLUMNS + (", content, raw" if with_content else "")
    if version is None:
        cursor = await conn.execute(
            f"""
            SELECT {columns} FROM document_versions WHERE document_id = %s
            ORDER BY major DESC, minor DESC, patch DESC LIMIT 1
            """,
            (document_id,),
        )
    else:
        cursor = await conn.execute(
            f"""
            SELECT {columns} FROM document_versions
            WHERE document_id = %s AND major = %s AND minor = %s AND patch = %s
            """,
            (document_id, version.major, version.minor, version.patch),
        )
    return await cursor.fetchone()


async def get_version_by_id(
    conn: Conn, *, version_id: UUID, with_content: bool = True
) -> dict[str, Any] | None:
    columns = _VERSION_COLUMNS + (", content, raw" if with_content else "")
    cursor = await conn.execute(
        f"SELECT {columns} FROM document_versions WHERE id = %s", (version_id,)
    )
    return await cursor.fetchone()


async def list_versions(
    conn: Conn, *, document_id: UUID, skip: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    cursor = await conn.execute(
        f"""
        SELECT {_VERSION_COLUMNS}, count(*) OVER () AS total FROM document_versions
        WHERE document_id = %s
        ORDER BY major DESC, minor DESC, patch DESC OFFSET %s LIMIT %s
        """,
        (document_id, skip, limit),
    )
    count = "SELECT count(*) AS total FROM document_versions WHERE document_id = %s"
    return await page_of(
        conn, await cursor.fetchall(), skip=skip, count=count, params=(document_id,)
    )


async def set_version_content(
    conn: Conn, *, version_id: UUID, content: str, metadata: dict[str, Any]
) -> None:
    """Store the extracted text the chunks were cut from, and merge extraction metadata."""
    await conn.execute(
        """
        UPDATE document_versions SET content = %s, metadata = metadata || %s WHERE id = %s
        """,
        (content, Jsonb(metadata), version_id),
    )


async def advisory_lock(conn: Conn, *parts: str) -> None:
    """Serialise writers of one key (project + name, hash or source) until commit."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("\x1f".join(parts),)
    )
