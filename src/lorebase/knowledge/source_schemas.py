"""Sources as a resource: what `GET /sources/{id}` shows and what `PUT` may change."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lorebase.text import clean_tags

SourceKind = Literal["crawl", "git"]
SourceStatus = Literal["idle", "queued", "syncing", "failed", "deleting"]

MAX_SYNC_INTERVAL_SECONDS = 366 * 24 * 3600  # a year (and a day): longer is "never"
CRAWL_OPTIONS = frozenset({"max_depth", "max_pages", "respect_robots_txt", "discover"})
GIT_OPTIONS = frozenset({"include", "exclude"})
# Settings fields that say nothing to a user (an authorization decision made at submission).
_INTERNAL = frozenset({"allow_file", "source_id"})
_CREDENTIALS = re.compile(r"(https?://)[^/@\s]+@")


def redact(url: str) -> str:
    """A URL without the user:password (or token) an https repository URL may carry."""
    return _CREDENTIALS.sub(r"\1***@", url)


class SourceRead(BaseModel):
    id: UUID
    project_id: UUID
    kind: SourceKind
    uri: str = Field(description="The start URL (crawl) or `repository#ref` (git).")
    settings: dict[str, Any] = Field(description="The options each sync runs with.")
    sync_interval_seconds: int | None = Field(
        description="Re-synced this long after each sync; null: only on request."
    )
    status: SourceStatus
    last_synced_at: datetime | None
    last_error: str | None
    last_job_id: UUID | None
    next_sync_at: datetime | None
    documents: int = Field(description="Documents this source brought in (retired included).")
    retired_documents: int = Field(description="Of those, the ones retired from search.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> SourceRead:
        settings = {k: v for k, v in (row["settings"] or {}).items() if k not in _INTERNAL}
        if isinstance(settings.get("url"), str):
            settings["url"] = redact(settings["url"])
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            kind=row["kind"],
            uri=redact(row["uri"]),
            settings=settings,
            sync_interval_seconds=row["sync_interval_seconds"],
            status=row["status"],
            last_synced_at=row["last_synced_at"],
            last_error=row["last_error"],
            last_job_id=row["last_job_id"],
            next_sync_at=row["next_sync_at"],
            documents=row["documents"],
            retired_documents=row["retired"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


class SourceUpdate(BaseModel):
    """Partial update: only the fields sent change. `sync_interval_seconds: null` stops the
    schedule, `max_pages: null` uses the server's default, `include`/`exclude: null` the
    default globs. Crawl options apply to crawl sources, globs to git sources."""

    model_config = ConfigDict(extra="forbid")

    sync_interval_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_SYNC_INTERVAL_SECONDS,
        description="Seconds between syncs (at least SOURCE_MIN_SYNC_INTERVAL_SECONDS, 60 by "
        "default); null: sync only on request.",
    )
    tags: list[str] | None = Field(default=None, max_length=50)
    max_depth: int | None = Field(default=None, ge=0, le=20)
    max_pages: int | None = Field(default=None, ge=1, le=10_000)
    respect_robots_txt: bool | None = None
    discover: bool | None = None
    include: list[str] | None = Field(default=None, max_length=200)
    exclude: list[str] | None = Field(default=None, max_length=200)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else clean_tags(value)
