"""Request and response shapes of `POST /rag/query` (SPEC), shared by REST, MCP and the CLI."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

MetadataValue = str | int | float | bool


class QueryFilters(BaseModel):
    """Restrict both search legs (inside SQL) to matching chunks."""

    model_config = ConfigDict(extra="forbid")

    document_ids: list[UUID] | None = Field(default=None, max_length=1000)
    # A document matches when it carries ANY of these tags.
    tags: list[str] | None = Field(default=None, max_length=100)
    types: list[str] | None = Field(default=None, max_length=100)
    # Every key/value must match the chunk's (or its document's) metadata.
    metadata: dict[str, MetadataValue] | None = None

    def canonical(self) -> dict[str, Any]:
        """An order-independent form for cache keys."""
        return {
            "document_ids": sorted(str(i) for i in self.document_ids or []),
            "tags": sorted(set(self.tags or [])),
            "types": sorted(set(self.types or [])),
            "metadata": dict(sorted((self.metadata or {}).items())),
        }


class QueryCreate(BaseModel):
    """A question to one project; unset flags take their defaults from the settings."""

    model_config = ConfigDict(extra="forbid")

    project_id: UUID
    query_text: str = Field(min_length=1, max_length=4000)
    top_k: int | None = Field(default=None, ge=1, le=100)
    use_hybrid_search: bool | None = None
    use_re_ranking: bool | None = None
    use_agentic_rag: bool | None = None
    filters: QueryFilters | None = None

    @field_validator("query_text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("query_text must not be blank")
        return value


class ResultRead(BaseModel):
    """One retrieved passage. `similarity_score` is the cosine similarity to the query;
    the list is ordered by the fused (and, when re-ranked, the reranker's) score."""

    id: UUID
    document_id: UUID
    document_name: str
    version: str
    chunk_text: str
    similarity_score: float
    rerank_score: float | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class CitationRead(BaseModel):
    """`quote` is verbatim text of the passage `result_id` (checked before it is returned)."""

    result_id: UUID
    quote: str


class QueryRead(BaseModel):
    query_id: UUID
    results: list[ResultRead]
    total_results: int
    synthesized_answer: str | None = None
    citations: list[CitationRead] = Field(default_factory=list)
    cached: bool = False
    warnings: list[str] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)


EventType = Literal["results", "delta", "citations", "done", "error"]


class QueryEvent(BaseModel):
    """One typed server-sent event of a streamed answer."""

    event: EventType
    data: dict[str, Any]
