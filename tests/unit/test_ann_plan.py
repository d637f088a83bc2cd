"""How the dense leg chooses between exact search and the HNSW index, and its ef_search."""

from __future__ import annotations

from lorebase.retrieval.vector import plan_search


def test_small_projects_are_searched_exactly() -> None:
    assert plan_search(chunks=800, dim=384, limit=10, ef_ceiling=300).exact
    assert plan_search(chunks=90, dim=1536, limit=10, ef_ceiling=300).exact


def test_toasted_vectors_use_the_index_sooner() -> None:
    """A 1536-d vector is TOASTed: reading every row costs far more than at 384-d."""
    assert not plan_search(chunks=500, dim=1536, limit=10, ef_ceiling=300).exact
    assert plan_search(chunks=500, dim=384, limit=10, ef_ceiling=300).exact


def test_ef_grows_with_the_project_and_is_capped_by_the_setting() -> None:
    small = plan_search(chunks=5_000, dim=384, limit=10, ef_ceiling=300)
    mid = plan_search(chunks=100_000, dim=384, limit=10, ef_ceiling=300)
    big = plan_search(chunks=1_000_000, dim=384, limit=10, ef_ceiling=300)
    assert small.ef_search == 40
    # Recall@10 at 100k: 0.944 at ef 200, 0.978 at ef 300 (bench hnsw-100k).
    assert 240 <= mid.ef_search <= 300
    assert big.ef_search == 300


def test_ef_covers_the_candidates_asked_for() -> None:
    plan = plan_search(chunks=5_000, dim=1536, limit=120, ef_ceiling=300)
    assert plan.ef_search == 120
    assert plan_search(chunks=5_000, dim=1536, limit=2000, ef_ceiling=300).ef_search == 1000


def test_a_document_filter_is_searched_exactly() -> None:
    plan = plan_search(
        chunks=100_000, dim=384, limit=10, ef_ceiling=300, filtered_by_documents=True
    )
    assert plan.exact
