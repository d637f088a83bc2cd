"""Document request and response bodies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from lorebase.documents.models import Bump, DocumentStatus
from lorebase.text import clean_tags

MAX_CONTENT_CHARS = 20_000_000


def _check_tags(tags: list[str] | None) -> list[str] | None:
    return None if tags is None else clean_tags(tags)


@dataclass(frozen=True)
class DocumentFilter:
    """Which of a project's documents a list shows (None: any; `name` is a substring)."""

    project_id: UUID
    type: str | None = None
    tag: str | None = None
    status: str | None = None
    name: str | None = None


class DocumentCreate(BaseModel):
    """A document written through the API (uploads go through /knowledge/upload)."""

    model_config = ConfigDict(extra="forbid")

    project_id: UUID
    name: str = Field(min_length=1, max_length=500)
    type: str = Field(
        default="markdown",
        min_length=1,
        max_length=40,
        pattern=r"^[a-z0-9][a-z0-9_.-]*$",
        description="markdown, text, html, code, json, yaml, csv (indexed with that format) "
        "or any other slug (indexed as Markdown).",
    )
    content: str | None = Field(default=None, max_length=MAX_CONTENT_CHARS)
    tags: list[str] = Field(default_factory=list, max_length=50)
    metadata: dict[str, Any] = Field(default_factory=dict)

    _tags = field_validator("tags")(_check_tags)


class DocumentUpdate(BaseModel):
    """Partial update; sending `content` creates the next minor version and re-indexes."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=500)
    tags: list[str] | None = Field(default=None, max_length=50)
    metadata: dict[str, Any] | None = None
    content: str | None = Field(default=None, max_length=MAX_CONTENT_CHARS)

    _tags = field_validator("tags")(_check_tags)


class VersionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(max_length=MAX_CONTENT_CHARS)
    bump: Bump = "minor"


class DocumentRead(BaseModel):
    id: UUID
    project_id: UUID
    name: str
    type: str
    version: str
    content_hash: str
    tags: list[str]
    status: DocumentStatus
    source_uri: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_by: UUID | None = None
    created_at: datetime
    updated_at: datetime
    content: str | None = Field(
        default=None, description="The version's text (GET /documents/{id} only)."
    )
    job_id: UUID | None = Field(
        default=None, description="The indexing job started by this request, if any."
    )


class DocumentVersionRead(BaseModel):
    id: UUID
    document_id: UUID
    version: str
    content_hash: str
    size_bytes: int
    mime_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_by: UUID | None = None
    created_at: datetime
    job_id: UUID | None = Field(
        default=None, description="The indexing job started for this version, if any."
    )
