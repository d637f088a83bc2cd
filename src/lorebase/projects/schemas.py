"""Project request and response bodies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

ProjectStatus = Literal["active", "archived"]


@dataclass(frozen=True)
class ProjectFilter:
    """Which of the caller's projects a list shows (None: any)."""

    status: str | None = None
    tag: str | None = None
    parent_id: UUID | None = None


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    status: ProjectStatus = "active"
    parent_id: UUID | None = None


class ProjectUpdate(BaseModel):
    """Partial update: only the fields sent are changed (`parent_id: null` detaches)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    tags: list[str] | None = Field(default=None, max_length=50)
    status: ProjectStatus | None = None
    parent_id: UUID | None = None


class ProjectRead(BaseModel):
    id: UUID
    name: str
    description: str | None
    status: ProjectStatus
    tags: list[str]
    parent_id: UUID | None
    owner_id: UUID
    created_at: datetime
    updated_at: datetime


class ProjectListed(ProjectRead):
    """A project in a list, with the caller's role in it: what a client needs to offer only the
    actions the caller may take (None for an administrator who is not a member)."""

    role: Literal["owner", "editor", "viewer"] | None = None


class ProjectAccess(ProjectRead):
    """A project together with the caller's role in it (None for a global admin)."""

    role: Literal["owner", "editor", "viewer"] | None = None
    text_search_config: str = "english"
    embedding_model: str | None = None
    embedding_dim: int | None = None
    corpus_generation: int = 0
    settings: dict[str, object] = Field(default_factory=dict)


class MemberUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["owner", "editor", "viewer"]


class MemberRead(BaseModel):
    project_id: UUID
    user_id: UUID
    role: Literal["owner", "editor", "viewer"]
    created_at: datetime
    updated_at: datetime
