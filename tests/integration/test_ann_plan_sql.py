"""The dense leg's two plans on real PostgreSQL: exact search computes every distance without
the index and finds the true neighbours; the index plan reads the HNSW index even at 1536-d,
where the planner alone would scan every row."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import numpy as np
import pytest

from lorebase.bench.seeding import synthetic_owner
from lorebase.context import AppContext
from lorebase.knowledge import bulk
from lorebase.retrieval import repository
from lorebase.retrieval.vector import project_size, search_vector
from tests.retrieval_seed import make_owner

DIM = 1536
MODEL = "ann-plan-test@1536"


async def _project(ctx: AppContext, count: int) -> tuple[uuid.UUID, np.ndarray]:  # type: ignore[type-arg]
    _, project_id = await make_owner(ctx)
    rng = np.random.default_rng(count)
    vectors = rng.standard_normal((count, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    async with ctx.db.connection() as conn:
        doc, version = await synthetic_owner(conn, project_id=project_id)
        await bulk.load_prepared_items(
            conn,
            project_id=project_id,
            rows=(
                (uuid.uuid4(), project_id, doc, version, i, f"t{i}", "h", v, MODEL, DIM)
                for i, v in enumerate(vectors)
            ),
        )
        await conn.execute("ANALYZE knowledge_items")
    return project_id, vectors


async def _plan(ctx: AppContext, project_id: uuid.UUID, *, exact: bool, force: bool) -> str:
    params: dict[str, object] = {}
    where = repository.filter_sql(
        document_ids=None, tags=None, types=None, metadata=None, params=params
    )
    query = repository.vector_candidates_sql(DIM, where, exact=exact)
    async with ctx.db.transaction() as conn:
        if force:
            await repository.use_hnsw_index(conn, ef_search=40)
        cur = await conn.execute(
            b"EXPLAIN " + query.as_bytes(conn),
            dict(
                params,
                project_id=project_id,
                model=MODEL,
                query_vector=np.ones(DIM, dtype=np.float32),
                limit=10,
            ),
        )
        return "\n".join(row["QUERY PLAN"] for row in await cur.fetchall())


async def test_exact_plan_never_reads_the_hnsw_index(ctx: AppContext) -> None:
    project_id, _ = await _project(ctx, 300)
    plan = await _plan(ctx, project_id, exact=True, force=True)
    assert f"ix_knowledge_items_embedding_{DIM}" not in plan, plan


async def test_index_plan_reads_the_hnsw_index_at_1536_d(ctx: AppContext) -> None:
    project_id, _ = await _project(ctx, 600)
    plan = await _plan(ctx, project_id, exact=False, force=True)
    assert f"ix_knowledge_items_embedding_{DIM}" in plan, plan


@pytest.mark.parametrize("passages", [False, True])
async def test_search_vector_finds_the_true_neighbours_either_way(
    ctx: AppContext, passages: bool
) -> None:
    project_id, vectors = await _project(ctx, 400)
    query = vectors[7] + 0.05 * vectors[8]
    query /= np.linalg.norm(query)
    truth = list(np.argsort(-(vectors @ query))[:5])
    async with ctx.db.connection() as conn:
        assert await project_size(conn, project_id=project_id, model=MODEL) == 400
        dense = await search_vector(
            conn,
            project_id=project_id,
            model=MODEL,
            dim=DIM,
            query_vector=query,
            limit=5,
            ef_search=300,
            session_ef_search=300,
            filters=repository.filter_sql(
                document_ids=None, tags=None, types=None, metadata=None, params={}
            ),
            params={},
            passages=passages,
        )
        cur = await conn.execute(
            "SELECT id, chunk_index FROM knowledge_items WHERE project_id = %s", (project_id,)
        )
        index_of = {row["id"]: row["chunk_index"] for row in await cur.fetchall()}
        cur = await conn.execute("SELECT current_setting('enable_sort') AS s")
        row = await cur.fetchone()
    assert [index_of[i] for i, _ in dense.hits][:2] == [int(x) for x in truth[:2]]
    if passages:  # read by the same query: each hit's passage, its similarity its distance's
        assert dense.passages is not None
        assert list(dense.passages) == [i for i, _ in dense.hits]
        for chunk_id, distance in dense.hits:
            passage = dense.passages[chunk_id]
            assert passage["chunk_index"] == index_of[chunk_id]
            assert passage["document_name"]
            assert passage["similarity"] == pytest.approx(1 - distance)
    else:
        assert dense.passages is None
    assert row is not None
    assert row["s"] == "on", "the pooled connection keeps its settings"


@pytest.mark.parametrize("in_transaction", [False, True])
async def test_the_index_plans_settings_hold_for_its_query_and_end_with_it(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch, in_transaction: bool
) -> None:
    project_id, vectors = await _project(ctx, 150)  # above the exact threshold at 1536-d
    seen: list[dict[str, object]] = []

    async def settings_in_force(conn: Any, query: repository.VectorQuery) -> list[Any]:
        cur = await conn.execute(
            "SELECT current_setting('enable_sort') AS sort, "
            "current_setting('hnsw.ef_search') AS ef"
        )
        seen.extend(await cur.fetchall())
        return []

    monkeypatch.setattr(repository, "vector_candidates", settings_in_force)
    no_filters = repository.filter_sql(
        document_ids=None, tags=None, types=None, metadata=None, params={}
    )
    async with ctx.db.connection() as conn:
        scope = conn.transaction() if in_transaction else contextlib.nullcontext()
        async with scope:
            await search_vector(
                conn,
                project_id=project_id,
                model=MODEL,
                dim=DIM,
                query_vector=vectors[0],
                limit=10,
                ef_search=300,
                session_ef_search=300,
                filters=no_filters,
                params={},
            )
        cur = await conn.execute("SELECT current_setting('enable_sort') AS sort")
        after = await cur.fetchone()
    assert seen == [{"sort": "off", "ef": "40"}], "the query ran under the plan's settings"
    assert after == {"sort": "on"}, "and the pooled connection got its own back"
