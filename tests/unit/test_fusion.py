"""Score fusion and query-adaptive weights of the hybrid leg, and the keyword/natural split
of `lorebase eval`."""

from __future__ import annotations

import pytest

from lorebase.evaluation.dataset import query_kind
from lorebase.retrieval.fusion import (
    convex,
    fuse_legs,
    gated_share,
    lexical_weight,
    normalise,
    top_margin,
)


def test_normalise_minmax_and_zscore_with_their_floors() -> None:
    assert normalise([3.0, 2.0, 1.0], "minmax") == ([1.0, 0.5, 0.0], 0.0)
    values, floor = normalise([3.0, 2.0, 1.0], "zscore")
    assert values[0] == pytest.approx(1.2247, abs=1e-4)
    assert floor == min(values)
    assert normalise([], "minmax") == ([], 0.0)
    assert normalise([5.0, 5.0], "minmax") == ([1.0, 1.0], 0.0)


def test_convex_weights_the_legs_and_missing_items_get_the_floor() -> None:
    dense = [("a", 0.9), ("b", 0.8), ("c", 0.1)]
    lexical = [("c", 10.0), ("d", 1.0)]
    fused = dict(convex([(dense, 0.7), (lexical, 0.3)]))
    assert fused["a"] == pytest.approx(0.7)
    assert fused["c"] == pytest.approx(0.3)  # dense floor 0 + lexical top 1.0 * 0.3
    assert [i for i, _ in convex([(dense, 0.7), (lexical, 0.3)])][:2] == ["a", "b"]
    assert convex([(dense, 0.2), (lexical, 0.8)])[0][0] == "c"


def test_lexical_weight_rises_for_terms_code_and_quotes_not_for_questions() -> None:
    def weight(query: str) -> float:
        return lexical_weight(query, base=0.2, boosted=0.5)

    assert weight("__mro_entries__") == 0.5
    assert weight("str.casefold") == 0.5
    assert weight("splitlines keepends") == 0.5
    assert weight('find "connection refused" errors in the log please now') == 0.5
    assert weight("How often should the QX-7702 be serviced?") == 0.2
    assert weight("Query has no __len__(), why not?") == 0.2
    assert weight("exit a loop before it finishes and carry on after it") == 0.2


def test_fuse_legs_rrf_keeps_the_weighted_rrf_order_and_zscore_reads_scores() -> None:
    vector = [("a", 0.1), ("b", 0.5), ("c", 0.9)]  # cosine distances
    text = [("c", 5.0), ("b", 3.0)]
    rrf = fuse_legs("q", vector, text, method="rrf", vector_weight=1, fulltext_weight=1, rrf_k=60)
    assert rrf == ["c", "b", "a"]  # 1/63 + 1/61 > 2/62
    text.append(("a", 1.0))  # the lexical leg ranks every candidate: z-scores among them
    dense_first = fuse_legs(
        "plain question about things?",
        vector,
        text,
        method="zscore",
        vector_weight=0.8,
        fulltext_weight=0.2,
        rrf_k=60,
        adaptive_weight=0.9,
    )
    assert dense_first[0] == "a"
    keyword = fuse_legs(
        "__init_subclass__",
        vector,
        text,
        method="zscore",
        vector_weight=0.8,
        fulltext_weight=0.2,
        rrf_k=60,
        adaptive_weight=0.9,
    )
    assert keyword[0] == "c"


def test_query_kind_tells_keyword_queries_from_questions() -> None:
    assert query_kind("__slots__ __weakref__") == "keyword"
    assert query_kind("zfill") == "keyword"
    assert query_kind("How do I fetch multiple files with libcurl?") == "natural"
    assert query_kind("configure fails when using static libraries") == "natural"


def test_top_margin_reads_how_far_the_best_hit_stands_out() -> None:
    assert top_margin([10.0, 5.0, 1.0]) == pytest.approx(0.5)
    assert top_margin([1.0, 4.0]) == pytest.approx(0.75)  # unsorted input
    assert top_margin([3.0, 3.0]) == 0.0
    assert top_margin([2.0]) == 1.0
    assert top_margin([]) == 0.0
    assert top_margin([0.0, -1.0]) == 0.0


def test_gated_share_scales_a_leg_by_its_confidence() -> None:
    assert gated_share(0.3, 0.4, full_at=0.2) == pytest.approx(0.3)
    assert gated_share(0.3, 0.1, full_at=0.2) == pytest.approx(0.15)
    assert gated_share(0.3, 0.0, full_at=0.2) == 0.0
    assert gated_share(0.3, -1.0, full_at=0.2) == 0.0
    assert gated_share(0.3, 0.0, full_at=0.0) == pytest.approx(0.3)  # no gate


def test_fuse_legs_scales_an_unsure_lexical_leg_down() -> None:
    vector = [("a", 0.30), ("b", 0.32), ("c", 0.60)]  # cosine distances: a, b close
    sure = [("b", 9.0), ("c", 1.0)]  # margin 0.89
    unsure = [("b", 5.0), ("c", 4.9)]  # margin 0.02

    def fused(text: list[tuple[str, float]], confidence: float | None) -> list[str]:
        return fuse_legs(
            "a plain question?",
            vector,
            text,
            method="zscore",
            vector_weight=0.5,
            fulltext_weight=0.5,
            rrf_k=60,
            lexical_confidence=confidence,
        )

    assert fused(sure, 0.4)[0] == "b"  # a confident lexical leg keeps its share
    assert fused(unsure, None)[0] == "b"  # ungated, even an unsure one outvotes the dense top
    assert fused(unsure, 0.4)[0] == "a"  # gated: the dense order stands
    rrf = fuse_legs(
        "q",
        vector,
        unsure,
        method="rrf",
        vector_weight=1,
        fulltext_weight=1,
        rrf_k=60,
        lexical_confidence=0.4,
    )
    assert rrf[0] == "b"  # RRF fuses ranks: no gate


def test_a_lone_exact_hit_stands_out_among_the_candidates_the_lexical_leg_lacks() -> None:
    # A code only one chunk holds: the lexical leg returns it alone among the dense leg's 20.
    vector = [(f"d{i}", 0.2 + i * 0.01) for i in range(19)] + [("code", 0.35)]
    text = [("code", 3.0)]
    fused = fuse_legs(
        "XK4217",
        vector,
        text,
        method="zscore",
        vector_weight=0.8,
        fulltext_weight=0.2,
        rrf_k=60,
        adaptive_weight=0.5,
    )
    assert fused[0] == "code"
    # Normalised among 20 candidates, the other 19 at 0: sqrt(19) deviations out, not one.
    values, floor = normalise([3.0], "zscore", population=20)
    assert values[0] == pytest.approx(19**0.5)
    assert floor == pytest.approx(-(19**-0.5))
    assert normalise([3.0], "zscore") == ([1.0], 0.0)  # alone, as before
