"""Loading chunks that are already embedded, many documents at once (the bench fills a
project to index scale this way): one binary COPY, no jobs, no embedding calls."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from lorebase.db import Conn
from lorebase.knowledge import repository
from lorebase.projects.service import bump_corpus_generation

PREPARED_COLUMNS = repository.PREPARED_COLUMNS


async def load_prepared_items(
    conn: Conn, *, project_id: UUID, rows: Iterable[tuple[Any, ...]]
) -> int:
    """COPY `rows` (shaped like `PREPARED_COLUMNS`, all of `project_id`) into the searchable
    chunks and bump the project's corpus generation (answers cached before are stale).
    Returns how many were written; in the caller's transaction, or each statement its own."""
    written = await repository.copy_prepared_items(conn, rows)
    await bump_corpus_generation(conn, project_id=project_id)
    return written
