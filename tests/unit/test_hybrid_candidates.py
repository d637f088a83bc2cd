"""Hybrid search asks each leg for candidates in proportion to the results wanted."""

from __future__ import annotations

import pytest

from lorebase.retrieval.search import hybrid_candidates
from lorebase.settings import Settings


@pytest.mark.parametrize(
    ("top_k", "pool", "expected"),
    [
        (1, 1, 4),
        (5, 5, 20),
        (10, 10, 40),
        (20, 20, 50),  # RETRIEVAL_CANDIDATES is the ceiling
        (100, 100, 100),  # never fewer than the passages hydrated
        (5, 20, 20),  # a reranker's window
    ],
)
def test_candidates_grow_with_top_k_up_to_the_ceiling(top_k: int, pool: int, expected: int) -> None:
    settings = Settings(_env_file=None, retrieval_candidates_per_result=4)  # type: ignore[call-arg]
    assert hybrid_candidates(settings, top_k=top_k, pool=pool) == expected


def test_the_default_keeps_the_ceiling_for_every_top_k() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert [hybrid_candidates(settings, top_k=k, pool=k) for k in (1, 5, 10, 60)] == [
        50,
        50,
        50,
        60,
    ]


def test_the_factor_and_the_ceiling_are_settings() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, retrieval_candidates=30, retrieval_candidates_per_result=2
    )
    assert hybrid_candidates(settings, top_k=5, pool=5) == 10
    assert hybrid_candidates(settings, top_k=50, pool=50) == 50
    assert hybrid_candidates(settings, top_k=20, pool=20) == 30
