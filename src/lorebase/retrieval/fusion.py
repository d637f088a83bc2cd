"""Weighted reciprocal rank fusion of ranked candidate lists."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


def weighted_rrf(
    rankings: Sequence[tuple[Sequence[K], float]], *, k: int = 60
) -> list[tuple[K, float]]:
    """Fuse `(ranked ids, weight)` lists: score(d) = sum of weight / (k + rank), rank from 1.

    Ties keep the order of first appearance (earlier lists first), so fusion is deterministic.
    """
    if k < 0:
        raise ValueError("k must be >= 0")
    scores: dict[K, float] = {}
    for ids, weight in rankings:
        if weight <= 0:
            continue
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = {item: position for position, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))
