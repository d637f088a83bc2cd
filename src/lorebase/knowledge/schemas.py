"""Ingestion request and response bodies: uploads, crawls, git syncs and jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lorebase.documents.schemas import DocumentRead
from lorebase.text import clean_tags

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JobKind = Literal["upload", "text", "crawl", "git", "source_delete"]


class IngestAccepted(BaseModel):
    """One file or text: the document it became and the job indexing it.

    `job_id` is null when identical content already exists in the project (`duplicate`)."""

    document_id: UUID
    job_id: UUID | None
    status: str = Field(description="The job's status, or the existing document's status.")
    duplicate: bool = False
    name: str
    version: str
    document: DocumentRead


class TextIngest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: UUID
    name: str = Field(min_length=1, max_length=500)
    text: str = Field(min_length=1, max_length=20_000_000)
    tags: list[str] = Field(default_factory=list, max_length=50)

    _tags = field_validator("tags")(clean_tags)


class CrawlCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: UUID
    url: str = Field(min_length=1, max_length=2048, description="http(s) start page")
    max_depth: int = Field(default=0, ge=0, le=20, description="0: only the start page")
    max_pages: int | None = Field(default=None, ge=1, le=10_000)
    respect_robots_txt: bool = True
    discover: bool = Field(
        default=True,
        description="Also follow the site's sitemap.xml and llms.txt (when max_depth > 0).",
    )
    tags: list[str] = Field(default_factory=list, max_length=50)

    _tags = field_validator("tags")(clean_tags)


class GitCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: UUID
    url: str = Field(
        min_length=1, max_length=2048, description="https://, ssh://, git@host:path or file://"
    )
    ref: str | None = Field(
        default=None, max_length=255, description="Branch, tag or commit (default: HEAD)."
    )
    include: list[str] | None = Field(default=None, max_length=200, description="Globs.")
    exclude: list[str] | None = Field(
        default=None,
        max_length=200,
        description="Globs; default skips lock files, vendored and build directories.",
    )
    tags: list[str] = Field(default_factory=list, max_length=50)

    _tags = field_validator("tags")(clean_tags)

    @field_validator("ref")
    @classmethod
    def _ref(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("-") or any(c.isspace() for c in value)):
            raise ValueError("ref must be a branch, tag or commit name")
        return value


class JobAccepted(BaseModel):
    job_id: UUID
    status: JobStatus


class StageProgress(BaseModel):
    done: int
    total: int


class JobProgress(BaseModel):
    done: int
    total: int
    stage: str | None = None
    stages: dict[str, StageProgress] = Field(default_factory=dict)


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a list shows (None: any)."""

    status: str | None = None
    kind: str | None = None


class JobRead(BaseModel):
    id: UUID
    project_id: UUID
    kind: str
    status: JobStatus
    progress: JobProgress
    error: str | None = None
    document_ids: list[UUID]
    attempts: int
    cancel_requested: bool
    result: dict[str, Any] | None = None
    created_at: datetime
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    retry_of: UUID | None = Field(default=None, description="The job this one runs again.")
    retried_as: UUID | None = Field(
        default=None, description="The job that runs this one again (after a retry)."
    )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> JobRead:
        payload = row.get("payload") or {}
        stages = {
            name: StageProgress(**value) for name, value in (payload.get("stages") or {}).items()
        }
        return cls(
            id=row["id"],
            project_id=row["project_id"],
            kind=row["kind"],
            status=row["status"],
            progress=JobProgress(
                done=row["progress_done"],
                total=row["progress_total"],
                stage=row["stage"],
                stages=stages,
            ),
            error=row["error"],
            document_ids=list(row["document_ids"] or []),
            attempts=row["attempts"],
            cancel_requested=row["cancel_requested"],
            result=payload.get("result"),
            created_at=row["created_at"],
            started_at=row["started_at"],
            heartbeat_at=row["heartbeat_at"],
            finished_at=row["finished_at"],
            retry_of=payload.get("retry_of"),
            retried_as=payload.get("retried_as"),
        )
