"""Task request and response bodies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

TaskStatus = Literal["todo", "in_progress", "done", "blocked"]
TaskPriority = Literal["low", "medium", "high", "critical"]

MAX_DEPENDENCIES = 100


def _unique(ids: list[UUID]) -> list[UUID]:
    return list(dict.fromkeys(ids))


@dataclass(frozen=True)
class TaskFilter:
    """Which of a project's tasks a list shows (None: any)."""

    project_id: UUID
    status: str | None = None
    priority: str | None = None
    assignee: str | None = None


class TaskCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    project_id: UUID
    title: str = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20_000)
    status: TaskStatus = "todo"
    priority: TaskPriority = "medium"
    assignee: str | None = Field(default=None, min_length=1, max_length=200)
    dependencies: list[UUID] = Field(default_factory=list, max_length=MAX_DEPENDENCIES)

    @field_validator("dependencies")
    @classmethod
    def _dedupe(cls, value: list[UUID]) -> list[UUID]:
        return _unique(value)


class TaskUpdate(BaseModel):
    """Partial update: only the fields sent change; `dependencies` replaces the whole set and
    `assignee: null` / `description: null` clear them."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=20_000)
    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    assignee: str | None = Field(default=None, min_length=1, max_length=200)
    dependencies: list[UUID] | None = Field(default=None, max_length=MAX_DEPENDENCIES)

    @field_validator("dependencies")
    @classmethod
    def _dedupe(cls, value: list[UUID] | None) -> list[UUID] | None:
        return None if value is None else _unique(value)


class TaskRead(BaseModel):
    id: UUID
    project_id: UUID
    title: str
    description: str | None
    status: TaskStatus
    priority: TaskPriority
    assignee: str | None
    dependencies: list[UUID]
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
