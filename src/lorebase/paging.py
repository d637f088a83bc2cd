"""The list envelope and its paging bounds, shared by the REST routes and the MCP tools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")

DEFAULT_LIMIT = 50

Skip = Annotated[int, Field(ge=0, le=1_000_000, description="Items to skip (paging).")]
Limit = Annotated[int, Field(ge=1, le=500, description="Items to return (paging).")]


@dataclass(frozen=True)
class PageRequest:
    """Which slice of a list to return: `limit` items after the first `skip`."""

    skip: int = 0
    limit: int = DEFAULT_LIMIT


class Page(BaseModel, Generic[T]):
    """Every list answers `{items, total, skip, limit}`, over REST and MCP alike."""

    items: list[T]
    total: int
    skip: int
    limit: int
