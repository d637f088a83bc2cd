"""Output shapes of list tools: the REST list envelope `{items, total, skip, limit}`."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """Every list answers `{items, total, skip, limit}`, as the REST list endpoints do."""

    items: list[T]
    total: int
    skip: int
    limit: int
