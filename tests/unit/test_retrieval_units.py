"""Pure parts of retrieval and answering: fusion, citation checking, ranking parsing,
web-search syntax detection, evaluation metrics, cache-key normalisation."""

from __future__ import annotations

import math
import uuid

import pytest

from lorebase.answering.cache import normalise_query
from lorebase.answering.citations import check_citations, find_verbatim
from lorebase.answering.synthesis import Passage, finish_answer, pack_passages
from lorebase.evaluation.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from lorebase.providers.base import BadResponse
from lorebase.retrieval.frequency import TermStats
from lorebase.retrieval.fulltext import (
    Tier,
    candidate_tiers,
    effective_operator,
    uses_websearch_syntax,
)
from lorebase.retrieval.fusion import weighted_rrf
from lorebase.retrieval.lexical_repository import tsquery_term, websearch_text
from lorebase.retrieval.rerank import parse_ranking
from lorebase.retrieval.schemas import QueryFilters


def test_rrf_sums_weighted_reciprocal_ranks() -> None:
    fused = weighted_rrf([(["a", "b", "c"], 1.0), (["c", "d"], 1.0)], k=60)
    scores = dict(fused)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 61)
    assert next(item for item, _ in fused) == "c"


def test_rrf_weights_shift_the_order() -> None:
    lists = [(["a", "b"], 1.0), (["b", "a"], 1.0)]
    assert [i for i, _ in weighted_rrf(lists, k=60)] == ["a", "b"]  # tie: first list wins
    heavier_text = [(["a", "b"], 1.0), (["b", "a"], 2.0)]
    assert [i for i, _ in weighted_rrf(heavier_text, k=60)] == ["b", "a"]
    assert [i for i, _ in weighted_rrf([(["a"], 1.0), (["z"], 0.0)], k=60)] == ["a"]


def test_rrf_rejects_negative_k() -> None:
    with pytest.raises(ValueError, match="k must be"):
        weighted_rrf([(["a"], 1.0)], k=-1)


PASSAGES = [
    "The nonlocal statement causes the listed identifiers to refer to previously bound "
    "variables in the nearest enclosing scope excluding globals.",
    "Default parameter values are evaluated from left to right when the function definition "
    "is executed.",
]


def test_citation_quotes_are_copied_from_the_cited_passage() -> None:
    answer = (
        "Use nonlocal: it makes \u201cthe listed identifiers to refer to previously bound "
        "variables\u201d [1]. Default values are evaluated when the function definition is "
        "executed [2]."
    )
    check = check_citations(answer, PASSAGES)
    assert check.dropped == 0
    numbers = [c.number for c in check.citations]
    assert numbers == [1, 2]
    for citation in check.citations:
        assert citation.quote in PASSAGES[citation.number - 1]
    assert check.citations[0].quote == (
        "the listed identifiers to refer to previously bound variables"
    )
    # No verbatim span for the second claim: the passage sentence that supports it.
    assert check.citations[1].quote == PASSAGES[1]


def test_an_unsupported_citation_is_dropped_and_counted() -> None:
    answer = "Python was named after a comedy group [1]. Lists are sorted in place [5]."
    check = check_citations(answer, PASSAGES)
    assert check.citations == []
    assert check.dropped == 1
    assert check.out_of_range == 1


def test_verbatim_matching_ignores_case_and_whitespace_but_returns_passage_text() -> None:
    passage = "Default parameter values are\n   evaluated from left to right."
    assert find_verbatim(passage, "default parameter values are evaluated") == (
        "Default parameter values are\n   evaluated"
    )
    assert find_verbatim(passage, "right to left") is None


def test_finish_answer_maps_numbers_to_result_ids_and_warns() -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    passages = [Passage(ids[0], PASSAGES[0]), Passage(ids[1], PASSAGES[1])]
    answer = finish_answer(
        "Default parameter values are evaluated from left to right [2]. Bananas [1].",
        passages,
        [],
    )
    assert answer.citations == [
        (ids[1], "Default parameter values are evaluated from left to right")
    ]
    assert any("1 citation(s) dropped" in w for w in answer.warnings)
    assert answer.degraded is False


def test_pack_passages_respects_the_budget_and_keeps_the_best() -> None:
    passages = [Passage(uuid.uuid4(), "word " * 400), Passage(uuid.uuid4(), "short text")]
    packed = pack_passages(passages, budget_tokens=100)
    assert len(packed) == 1
    assert len(packed[0].text) < len(passages[0].text)
    assert packed[0].id == passages[0].id
    both = pack_passages(passages, budget_tokens=10_000)
    assert [p.id for p in both] == [p.id for p in passages]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[2] > [3] > [1]", [1, 2, 0]),
        ("Ranking: [3] > [3] > [9] > [1]", [2, 0, 1]),
        ("2, 1", [1, 0, 2]),
        ("source 2 mentions 1990 first [1]", [0, 1, 2]),
    ],
)
def test_parse_ranking_completes_and_dedupes(text: str, expected: list[int]) -> None:
    assert parse_ranking(text, 3) == expected


def test_parse_ranking_rejects_an_answer_without_ranks() -> None:
    with pytest.raises(BadResponse):
        parse_ranking("I cannot rank these passages.", 3)


@pytest.mark.parametrize(
    ("text", "websearch"),
    [
        ('"exact phrase" here', True),
        ("python -java", True),
        ("cats OR dogs", True),
        ("cats or dogs", False),
        ("Should I use the stable version or development version?", False),
        ("Why does my posting using -F not work?", False),
        ('Why is "NOMAIL" an error?', False),
        ('"MySQL Server has gone away"', True),
        ("how do I stop a loop early", False),
        ("error-handling in async code", False),
        ("curl -X gives me HTTP problems", False),
        ("rm -rf excludes nothing", True),
    ],
)
def test_websearch_syntax_detection(text: str, websearch: bool) -> None:
    assert uses_websearch_syntax(text) is websearch
    assert effective_operator(text, "or") == ("and" if websearch else "or")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"spare bolts" -widget', '"spare bolts" -widget'),
        ("cats OR dogs", "cats OR dogs"),
        ("see config.yaml -F --verbose", "see config yaml F verbose"),
        ('"content-transfer-encoding" header', '"content transfer encoding" header'),
        ("-x86_64 curl_easy_setopt()", "-x86_64 curl_easy_setopt"),
        ("- & -", ""),
    ],
)
def test_websearch_text_splits_words_as_the_index_does(text: str, expected: str) -> None:
    assert websearch_text(text) == expected


def test_lexemes_are_quoted_for_tsquery_input() -> None:
    assert tsquery_term("plain") == "'plain'"
    assert tsquery_term("it's") == "'it''s'"
    assert tsquery_term("back\\slash") == "'back\\\\slash'"


def test_rare_lexemes_fill_the_budget_rarest_first() -> None:
    tiers = candidate_tiers({"a": 5, "b": 900, "c": 1000, "d": 1500}, total=10**5, budget=2000)
    assert tiers == [
        Tier("'a' | 'b' | 'c'"),
        Tier("'d'", exclude="('a' | 'b' | 'c')"),
    ]


def test_a_corpus_within_the_budget_ranks_every_lexeme_at_once() -> None:
    # Summed frequencies exceed the budget, but no more chunks exist than the budget allows.
    assert candidate_tiers({"a": 400, "b": 500, "c": 600}, total=600, budget=600) == [
        Tier("'a' | 'b' | 'c'")
    ]


def test_common_words_rank_the_chunks_holding_more_of_them_first() -> None:
    tiers = candidate_tiers(
        {"rare": 10, "w": 3000, "x": 4000, "y": 5000, "z": 6000}, total=10**5, budget=2000
    )
    assert tiers == [
        Tier("'rare'"),
        Tier("'w' & 'x' & 'y'", exclude="('rare')", capped=True),
        Tier("'w' & 'x'", exclude="('rare') | ('w' & 'x' & 'y')", capped=True),
        Tier("'w'", exclude="('rare') | ('w' & 'x' & 'y') | ('w' & 'x')", capped=True),
    ]
    assert candidate_tiers({"only": 3000}, total=10**5, budget=2000) == [
        Tier("'only'", capped=True)
    ]


def test_idf_is_bm25s() -> None:
    stats = TermStats(total=100, frequencies={"rare": 1, "everywhere": 100})
    assert stats.idf("rare") == pytest.approx(math.log(1 + 99.5 / 1.5))
    assert 0 < stats.idf("everywhere") < 0.01


def test_metrics_match_hand_computed_values() -> None:
    relevant = {"a": 2, "b": 1}
    ranked = ["x", "a", "y", "b"]
    dcg = 2 / math.log2(3) + 1 / math.log2(5)
    idcg = 2 + 1 / math.log2(3)
    assert ndcg_at_k(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert recall_at_k(ranked, relevant, 2) == 0.5
    assert recall_at_k(ranked, relevant, 10) == 1.0
    assert mrr_at_k(ranked, relevant, 10) == 0.5
    assert mrr_at_k(["x"], relevant, 10) == 0.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


def test_query_normalisation_and_canonical_filters() -> None:
    assert normalise_query("  What IS   a\tDecorator? ") == "what is a decorator?"
    a = uuid.uuid4()
    b = uuid.uuid4()
    one = QueryFilters(document_ids=[a, b], tags=["y", "x"], metadata={"k": 1, "a": "b"})
    two = QueryFilters(document_ids=[b, a], tags=["x", "y"], metadata={"a": "b", "k": 1})
    assert one.canonical() == two.canonical()


def test_markers_after_the_full_stop_cite_the_sentence_before() -> None:
    answer = f"{PASSAGES[1]} [2] Another claim without support. [1]"
    check = check_citations(answer, PASSAGES)
    assert [c.number for c in check.citations] == [2]
    assert check.citations[0].quote == PASSAGES[1].rstrip(".")
    assert check.dropped == 1
