"""The server's JSON, typed. Each model names the OpenAPI schema it mirrors (`__schema__`), and
the repository's CI checks every field against `/api/openapi.json`, so the client cannot drift.
Unknown fields are kept (`extra="allow"`): a newer server never breaks an older client."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")
    __schema__: ClassVar[str] = ""


class Page(Model, Generic[T]):
    items: list[T]
    total: int
    skip: int
    limit: int


class User(Model):
    __schema__ = "UserRead"
    id: UUID
    username: str
    email: str | None = None
    is_admin: bool
    created_at: datetime


class TokenPair(Model):
    __schema__ = "TokenPair"
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class ApiKey(Model):
    __schema__ = "ApiKeyRead"
    id: UUID
    name: str
    prefix: str
    scopes: list[str]
    project_id: UUID | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    created_at: datetime


class ApiKeyCreated(ApiKey):
    __schema__ = "ApiKeyCreated"
    key: str  # shown once


class Project(Model):
    __schema__ = "ProjectRead"
    id: UUID
    name: str
    description: str | None = None
    status: str
    tags: list[str]
    parent_id: UUID | None = None
    owner_id: UUID
    created_at: datetime
    updated_at: datetime


class Member(Model):
    __schema__ = "MemberRead"
    project_id: UUID
    user_id: UUID
    role: str
    created_at: datetime
    updated_at: datetime


class Document(Model):
    __schema__ = "DocumentRead"
    id: UUID
    project_id: UUID
    name: str
    type: str
    version: str
    content_hash: str
    tags: list[str]
    status: str
    source_uri: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_by: UUID | None = None
    created_at: datetime
    updated_at: datetime
    content: str | None = None
    job_id: UUID | None = None


class DocumentVersion(Model):
    __schema__ = "DocumentVersionRead"
    id: UUID
    document_id: UUID
    version: str
    content_hash: str
    size_bytes: int
    mime_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_by: UUID | None = None
    created_at: datetime
    job_id: UUID | None = None


class Task(Model):
    __schema__ = "TaskRead"
    id: UUID
    project_id: UUID
    title: str
    description: str | None = None
    status: str
    priority: str
    assignee: str | None = None
    dependencies: list[UUID]
    created_by: UUID | None = None
    created_at: datetime
    updated_at: datetime


class IngestAccepted(Model):
    __schema__ = "IngestAccepted"
    document_id: UUID
    job_id: UUID | None = None
    status: str
    duplicate: bool = False
    name: str
    version: str
    document: Document


class JobAccepted(Model):
    __schema__ = "JobAccepted"
    job_id: UUID
    status: str


class JobProgress(Model):
    __schema__ = "JobProgress"
    done: int
    total: int
    stage: str | None = None
    stages: dict[str, Any] = Field(default_factory=dict)


class Job(Model):
    __schema__ = "JobRead"
    id: UUID
    project_id: UUID | None = None
    kind: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
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
    retry_of: UUID | None = None
    retried_as: UUID | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")


class Source(Model):
    """A crawl or git source a project keeps in sync (`sync_interval_seconds` schedules it)."""

    __schema__ = "SourceRead"
    id: UUID
    project_id: UUID
    kind: Literal["crawl", "git"]
    uri: str
    settings: dict[str, Any] = Field(default_factory=dict)
    sync_interval_seconds: int | None = None
    status: Literal["idle", "queued", "syncing", "failed", "deleting"]
    last_synced_at: datetime | None = None
    last_error: str | None = None
    last_job_id: UUID | None = None
    next_sync_at: datetime | None = None
    documents: int
    retired_documents: int
    created_at: datetime
    updated_at: datetime


class Result(Model):
    __schema__ = "ResultRead"
    id: UUID
    document_id: UUID
    document_name: str
    version: str
    chunk_text: str
    similarity_score: float
    rerank_score: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Citation(Model):
    __schema__ = "CitationRead"
    result_id: UUID
    quote: str


class QueryResponse(Model):
    __schema__ = "QueryRead"
    query_id: UUID
    results: list[Result]
    total_results: int
    synthesized_answer: str | None = None
    citations: list[Citation] = Field(default_factory=list)
    cached: bool = False
    warnings: list[str] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)


class QueryEvent(Model):
    """One server-sent event of a streamed query: `results`, `delta` (answer text as written),
    `citations`, `done`, or `error` (a problem; the stream ends after it)."""

    event: Literal["results", "delta", "citations", "done", "error"]
    data: dict[str, Any]

    @property
    def results(self) -> list[Result]:
        return [Result.model_validate(r) for r in self.data.get("results", [])]

    @property
    def text(self) -> str:
        return str(self.data.get("text", ""))

    @property
    def citations(self) -> list[Citation]:
        return [Citation.model_validate(c) for c in self.data.get("citations", [])]


class Health(Model):
    __schema__ = "HealthRead"
    status: str
    database: str
    cache: str
    version: str


SCHEMA_MODELS: tuple[type[Model], ...] = (
    User,
    TokenPair,
    ApiKey,
    ApiKeyCreated,
    Project,
    Member,
    Document,
    DocumentVersion,
    Task,
    IngestAccepted,
    JobAccepted,
    JobProgress,
    Job,
    Source,
    Result,
    Citation,
    QueryResponse,
    Health,
)
