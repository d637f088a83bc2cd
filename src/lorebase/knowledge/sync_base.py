"""What the crawl and git jobs share: progress, the counts a sync reports, its source and
items, and retiring a document from search."""

from __future__ import annotations

from typing import Any, Protocol
from uuid import UUID

from lorebase.context import AppContext
from lorebase.db import Conn
from lorebase.documents import indexing as documents
from lorebase.knowledge import repository, sources_repository
from lorebase.knowledge.pipeline import Progress
from lorebase.projects.service import bump_corpus_generation


class Tracker(Progress, Protocol):
    async def set_overall(self, done: int, total: int, *, stage: str | None = None) -> None:
        """The job's overall progress (pages or files), shown instead of the stage's."""


class Counts:
    """What a sync did, page by page or file by file (the job result's `counts`)."""

    NAMES = ("added", "updated", "unchanged", "not_modified", "retired", "errors")

    def __init__(self) -> None:
        self.values = dict.fromkeys(self.NAMES, 0)

    def add(self, outcome: str, number: int = 1) -> None:
        self.values[outcome] = self.values.get(outcome, 0) + number

    def as_dict(self) -> dict[str, int]:
        return dict(self.values)

    def result(self) -> dict[str, Any]:
        """The job result's fields: each count at the top (except `errors`, which there maps
        each failed URL or path to why) and all of them under `counts`."""
        top = {name: value for name, value in self.values.items() if name != "errors"}
        return {**top, "counts": self.as_dict()}


def source_id_of(payload: dict[str, Any]) -> UUID | None:
    """The source a crawl/git job syncs (jobs queued before sources existed have none)."""
    value = payload.get("source_id")
    return UUID(str(value)) if value else None


async def source_items(ctx: AppContext, source_id: UUID | None) -> dict[str, dict[str, Any]]:
    if source_id is None:
        return {}
    async with ctx.db.connection() as conn:
        rows = await sources_repository.list_items(conn, source_id=source_id)
    return {row["uri"]: row for row in rows}


async def retire_document(conn: Conn, *, project_id: UUID, document_id: UUID) -> None:
    """Out of search (its chunks go), kept with its versions; status `retired`."""
    await documents.set_status(conn, document_id=document_id, status="retired")
    if await repository.delete_document_items(conn, document_id=document_id):
        await bump_corpus_generation(conn, project_id=project_id)
