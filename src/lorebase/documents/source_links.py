"""A source's documents (a crawl's pages, a repository's files): which source wrote them, and
deleting them with the source. The source jobs run in `knowledge`; the SQL stays here."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from lorebase.db import Conn
from lorebase.documents import repository
from lorebase.projects.service import bump_corpus_generation


async def link_source(
    conn: Conn, *, project_id: UUID, source_id: UUID, document_ids: Sequence[UUID]
) -> int:
    """The documents a sync job produced belong to its source (unless another one already
    claimed them: the first source to bring a page in keeps it)."""
    if not document_ids:
        return 0
    return await repository.link_source(
        conn, project_id=project_id, source_id=source_id, document_ids=document_ids
    )


async def delete_source_documents(conn: Conn, *, project_id: UUID, source_id: UUID) -> int:
    """Delete every document of the source, with its versions and chunks (caller's
    transaction: all or nothing)."""
    deleted = await repository.delete_source_documents(
        conn, project_id=project_id, source_id=source_id
    )
    if deleted:
        await bump_corpus_generation(conn, project_id=project_id)
    return deleted
