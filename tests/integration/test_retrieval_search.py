"""Retrieval on real PostgreSQL + pgvector with the real local embedder: each mode, filters,
latest-version-only, and the HNSW index actually used by the dense leg."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

import pytest

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.projects.service import get_project_for
from lorebase.retrieval import repository
from lorebase.retrieval.schemas import QueryFilters
from lorebase.retrieval.search import SearchTarget, search, target_of
from tests.retrieval_seed import make_owner, seed_document

CORPUS = {
    "network-timeouts": [
        "When a request to the server takes too long, the client gives up and reports a "
        "connection timeout. Raise the timeout or check the network between the machines.",
        "Slow responses from the backend usually come from an overloaded database; the "
        "client then waits until its deadline passes and aborts the call.",
    ],
    # A long chunk: the code sits past the 256 tokens the local embedding model reads.
    "billing-runbook": [
        " ".join(
            f"Step {i}: open the billing console, pick the month, compare the invoice totals "
            "with the ledger summary and note any difference in the reconciliation sheet."
            for i in range(1, 12)
        )
        + " Error XK4217 is raised by the billing exporter when the ledger file is locked by "
        "another writer. Remove the stale lock file and rerun the export.",
    ],
    "error-codes-storage": [
        "Error QZ9981 means the export volume is full: the exporter stops writing and the "
        "partial file is discarded. Free disk space, then rerun the export job.",
    ],
    "error-codes-network": [
        "Error BM3310 appears when the exporter cannot reach the upload endpoint before its "
        "timeout. Check the proxy settings and that the network route is open.",
    ],
    "deadlines": [
        "Every remote call carries a deadline. If the deadline passes before the reply "
        "arrives, the call fails with a timeout error and is retried with backoff.",
    ],
    "memory": [
        "To reduce how much RAM an application consumes, cap the heap size, stream large "
        "files instead of loading them whole, and release caches you no longer need.",
    ],
    "program-guide": [
        "The program reads its configuration from a file and writes a log. Use the program "
        "flags to choose where the log goes and how verbose the program is.",
    ],
}


@dataclass
class Seeded:
    principal: Principal
    project_id: uuid.UUID
    docs: dict[str, uuid.UUID]
    chunk_doc: dict[uuid.UUID, str]

    async def target(self, ctx: AppContext) -> SearchTarget:
        project = await get_project_for(
            ctx.db, principal=self.principal, project_id=self.project_id, permission=Permission.READ
        )
        return target_of(project)


@pytest.fixture(scope="module")
async def seeded(ctx: AppContext) -> Seeded:
    principal, project_id = await make_owner(ctx)
    docs: dict[str, uuid.UUID] = {}
    chunk_doc: dict[uuid.UUID, str] = {}
    for name, chunks in CORPUS.items():
        doc = await seed_document(
            ctx,
            project_id=project_id,
            name=name,
            chunks=chunks,
            type_="text" if name == "memory" else "markdown",
            tags=["ops"] if name in ("network-timeouts", "deadlines") else ["misc"],
            metadata={"team": "billing"} if name == "billing-runbook" else {},
        )
        docs[name] = doc.id
        chunk_doc.update({cid: name for cid in doc.chunk_ids})
    return Seeded(principal, project_id, docs, chunk_doc)


def _names(results: list) -> list[str]:  # type: ignore[type-arg]
    return [r.document_name for r in results]


async def test_hybrid_beats_semantic_on_a_keyword_query(ctx: AppContext, seeded: Seeded) -> None:
    target = await seeded.target(ctx)
    # The code is past what the embedding model reads, so only the lexical leg can see it.
    query = "XK4217"
    semantic = await search(ctx, target=target, query_text=query, mode="semantic", top_k=3)
    hybrid = await search(ctx, target=target, query_text=query, mode="hybrid", top_k=3)
    assert "billing-runbook" not in _names(semantic.results), _names(semantic.results)
    assert _names(hybrid.results)[0] == "billing-runbook", _names(hybrid.results)


async def test_semantic_beats_fulltext_on_a_paraphrase(ctx: AppContext, seeded: Seeded) -> None:
    target = await seeded.target(ctx)
    query = "my program uses too much memory, how do I make it lighter"
    semantic = await search(ctx, target=target, query_text=query, mode="semantic", top_k=3)
    fulltext = await search(ctx, target=target, query_text=query, mode="fulltext", top_k=3)
    assert _names(semantic.results)[0] == "memory"
    assert "memory" not in _names(fulltext.results)[:1], _names(fulltext.results)


async def test_fulltext_or_matches_a_natural_question_that_and_misses(
    ctx: AppContext, seeded: Seeded
) -> None:
    target = await seeded.target(ctx)
    question = "why do my remote calls keep failing when the deadline expires"
    or_hits = await search(ctx, target=target, query_text=question, mode="fulltext", top_k=5)
    assert _names(or_hits.results)[0] == "deadlines"
    strict = ctx.settings.model_copy(update={"fulltext_operator": "and"})
    original = ctx.settings
    ctx.settings = strict
    try:
        and_hits = await search(ctx, target=target, query_text=question, mode="fulltext", top_k=5)
    finally:
        ctx.settings = original
    assert and_hits.results == []


async def test_websearch_syntax_keeps_its_meaning(ctx: AppContext, seeded: Seeded) -> None:
    target = await seeded.target(ctx)
    hits = await search(
        ctx, target=target, query_text='"ledger file" -timeout', mode="fulltext", top_k=5
    )
    assert _names(hits.results) == ["billing-runbook"]


async def test_stopword_only_query_matches_nothing_in_fulltext(
    ctx: AppContext, seeded: Seeded
) -> None:
    target = await seeded.target(ctx)
    hits = await search(ctx, target=target, query_text="the of and", mode="fulltext", top_k=5)
    assert hits.results == []


@pytest.mark.parametrize("mode", ["semantic", "fulltext", "hybrid"])
async def test_filters_apply_inside_both_legs(ctx: AppContext, seeded: Seeded, mode: str) -> None:
    target = await seeded.target(ctx)
    query = "timeout deadline request"
    by_tag = await search(
        ctx,
        target=target,
        query_text=query,
        mode=mode,
        top_k=10,  # type: ignore[arg-type]
        filters=QueryFilters(tags=["ops"]),
    )
    assert by_tag.results
    assert set(_names(by_tag.results)) <= {"network-timeouts", "deadlines"}
    by_type = await search(
        ctx,
        target=target,
        query_text="memory heap RAM",
        mode=mode,
        top_k=10,  # type: ignore[arg-type]
        filters=QueryFilters(types=["text"]),
    )
    assert set(_names(by_type.results)) == {"memory"}
    by_doc = await search(
        ctx,
        target=target,
        query_text=query,
        mode=mode,
        top_k=10,  # type: ignore[arg-type]
        filters=QueryFilters(document_ids=[seeded.docs["deadlines"]]),
    )
    assert set(_names(by_doc.results)) == {"deadlines"}
    by_meta = await search(
        ctx,
        target=target,
        query_text="export lock error",
        mode=mode,
        top_k=10,  # type: ignore[arg-type]
        filters=QueryFilters(metadata={"team": "billing"}),
    )
    assert set(_names(by_meta.results)) == {"billing-runbook"}


async def test_filtered_semantic_search_still_fills_top_k(ctx: AppContext) -> None:
    """Iterative index scans: a selective filter must not starve the top-k."""
    principal, project_id = await make_owner(ctx)
    await seed_document(
        ctx,
        project_id=project_id,
        name="noise",
        chunks=[f"Note {i} about gardening, tomatoes and watering schedules." for i in range(60)],
        tags=["garden"],
    )
    await seed_document(
        ctx,
        project_id=project_id,
        name="wanted",
        chunks=[f"Entry {i}: compiler flags and build caches." for i in range(6)],
        tags=["build"],
    )
    project = await get_project_for(
        ctx.db, principal=principal, project_id=project_id, permission=Permission.READ
    )
    hits = await search(
        ctx,
        target=target_of(project),
        query_text="watering tomatoes in the garden",
        mode="semantic",
        top_k=5,
        filters=QueryFilters(tags=["build"]),
    )
    assert len(hits.results) == 5
    assert set(_names(hits.results)) == {"wanted"}


async def test_empty_project_returns_no_results(ctx: AppContext) -> None:
    principal, project_id = await make_owner(ctx)
    project = await get_project_for(
        ctx.db, principal=principal, project_id=project_id, permission=Permission.READ
    )
    hits = await search(
        ctx, target=target_of(project), query_text="anything", mode="hybrid", top_k=5
    )
    assert hits.results == []


async def test_dense_leg_uses_the_partial_hnsw_index(ctx: AppContext, seeded: Seeded) -> None:
    """The SQL matches the index expression and predicate, so the planner can use it."""
    (vector,) = await ctx.embedder.embed_batch(["timeout"])
    params: dict[str, object] = {}
    where = repository.filter_sql(
        document_ids=None, tags=["ops"], types=None, metadata=None, params=params
    )
    query = repository.vector_candidates_sql(384, where)
    async with ctx.db.transaction() as conn:
        # On a tiny table an exact scan + sort is cheaper; forbid both so that only an
        # index whose expression or predicate does not match the query could fail this.
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_sort = off")
        await repository.set_ef_search(conn, ef_search=40)
        cur = await conn.execute(
            b"EXPLAIN " + query.as_bytes(conn),
            dict(
                params,
                project_id=seeded.project_id,
                model=ctx.embedder.model_id,
                query_vector=vector,
                limit=10,
            ),
        )
        plan = "\n".join(row["QUERY PLAN"] for row in await cur.fetchall())
        cur = await conn.execute("SHOW hnsw.ef_search")
        ef = (await cur.fetchone())["hnsw.ef_search"]  # type: ignore[index]
    assert "ix_knowledge_items_embedding_384" in plan, plan
    assert ef == "40"


async def test_pooled_connections_carry_the_configured_ef_search(ctx: AppContext) -> None:
    async with ctx.db.connection() as conn:
        cur = await conn.execute("SELECT current_setting('hnsw.ef_search') AS ef")
        row = await cur.fetchone()
    assert row is not None
    assert int(row["ef"]) == ctx.settings.hnsw_ef_search


async def test_another_ef_search_is_set_locally_and_finds_the_same(
    ctx: AppContext, seeded: Seeded
) -> None:
    """A context whose ef_search differs from the pool's session value sets it per query (in
    a transaction, so the pooled connection keeps its own)."""
    other = dataclasses.replace(
        ctx, settings=ctx.settings.model_copy(update={"hnsw_ef_search": 40})
    )
    target = await seeded.target(ctx)
    query = "the call gives up waiting for a reply"
    usual = await search(ctx, target=target, query_text=query, mode="semantic", top_k=3)
    local = await search(other, target=target, query_text=query, mode="semantic", top_k=3)
    assert [r.id for r in local.results] == [r.id for r in usual.results]
    async with ctx.db.connection() as conn:
        cur = await conn.execute("SELECT current_setting('hnsw.ef_search') AS ef")
        row = await cur.fetchone()
    assert row is not None
    assert int(row["ef"]) == ctx.settings.hnsw_ef_search
