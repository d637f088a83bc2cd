"""SQL for retrieval: the HNSW leg, the filters both legs share and the passage details (the
full-text leg's SQL is in `lexical_repository`).

Both legs search only chunks of the project's embedding model, and `filters` are applied
inside the SQL of both legs. A document's chunks are always those of one version: ingestion
replaces them in one transaction when a new version is indexed (`knowledge.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from lorebase.db import Conn

# Dimensions with a partial HNSW index in migration 0001 (vector, or halfvec above 2000).
VECTOR_INDEX_DIMS = frozenset({384, 512, 768, 1024, 1536})
HALFVEC_INDEX_DIMS = frozenset({3072})

DOCUMENTS_JOIN = sql.SQL("JOIN documents d ON d.id = ki.document_id")
# A passage as the results show it: the chunk (`ki`), its document and version.
PASSAGE_COLUMNS = sql.SQL(
    "ki.id, ki.document_id, d.name AS document_name, dv.version, d.type, d.tags, "
    "ki.chunk_index, ki.chunk_text, ki.metadata"
)
PASSAGE_JOINS = sql.SQL(
    "JOIN documents d ON d.id = ki.document_id "
    "JOIN document_versions dv ON dv.id = ki.document_version_id"
)


def vector_type(dim: int) -> sql.Composable:
    """`vector(dim)` or `halfvec(dim)`: exactly the expression the partial index was built on."""
    name = "halfvec" if dim in HALFVEC_INDEX_DIMS or dim > 2000 else "vector"
    return sql.SQL("{}({})").format(sql.SQL(name), sql.Literal(int(dim)))


def _distance(dim: int) -> sql.Composable:
    typ = vector_type(dim)
    return sql.SQL("(ki.embedding::{typ} <=> %(query_vector)s::{typ})").format(typ=typ)


class Filters:
    """`AND ...` clauses for the filters (values in `params`), and whether they read the
    `documents` row (tags, types, document metadata) so the join is added only then."""

    def __init__(self, clauses: sql.Composable, *, join_documents: bool) -> None:
        self.clauses = clauses
        self.join = DOCUMENTS_JOIN if join_documents else sql.SQL("")


def filter_sql(
    *,
    document_ids: list[UUID] | None,
    tags: list[str] | None,
    types: list[str] | None,
    metadata: dict[str, Any] | None,
    params: dict[str, Any],
) -> Filters:
    """The filters as SQL; values go into `params`."""
    clauses: list[sql.Composable] = []
    # (placeholder, value when that filter is set, condition)
    wanted = (
        ("f_document_ids", document_ids and list(document_ids), "ki.document_id = ANY({})"),
        ("f_tags", tags and list(tags), "d.tags && {}::text[]"),
        ("f_types", types and list(types), "d.type = ANY({}::text[])"),
        ("f_metadata", metadata and Jsonb(metadata), "(ki.metadata @> {0} OR d.metadata @> {0})"),
    )
    for name, value, condition in wanted:
        if value:
            params[name] = value
            clauses.append(sql.SQL(condition).format(sql.Placeholder(name)))
    join_documents = bool(tags or types or metadata)
    if not clauses:
        return Filters(sql.SQL(""), join_documents=False)
    return Filters(sql.SQL(" AND ") + sql.SQL(" AND ").join(clauses), join_documents=join_documents)


async def set_ef_search(conn: Conn, *, ef_search: int) -> None:
    """`SET LOCAL hnsw.ef_search` for the current transaction."""
    await conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(int(ef_search)),))


async def use_hnsw_index(conn: Conn, *, ef_search: int) -> None:
    """For the current transaction: `hnsw.ef_search`, and no sort, so the planner reads the
    HNSW index rather than every row of the project (its estimate at 1536-d is off by 10x)."""
    await conn.execute(
        "SELECT set_config('hnsw.ef_search', %s, true), set_config('enable_sort', 'off', true)",
        (str(int(ef_search)),),
    )


def vector_candidates_sql(dim: int, filters: Filters, *, exact: bool = False) -> sql.Composed:
    """The dense leg; the dimension is a literal so the partial index's predicate matches.
    `exact` computes every distance: the subquery (`OFFSET 0` keeps it apart) gives the
    planner no ORDER BY to serve from the HNSW index, so it reads the project's rows through
    the btree on (project_id, embedding_model) or the document filter, and sorts."""
    if exact:
        return sql.SQL("""
            SELECT c.id, c.distance FROM (
                SELECT ki.id, {distance} AS distance
                FROM knowledge_items ki {join}
                WHERE ki.embedding_dim = {dim}
                  AND ki.project_id = %(project_id)s
                  AND ki.embedding_model = %(model)s{filters}
                OFFSET 0
            ) c
            ORDER BY c.distance
            LIMIT %(limit)s
            """).format(
            distance=_distance(dim),
            join=filters.join,
            dim=sql.Literal(int(dim)),
            filters=filters.clauses,
        )
    return sql.SQL("""
        SELECT ki.id, {distance} AS distance
        FROM knowledge_items ki {join}
        WHERE ki.embedding_dim = {dim}
          AND ki.project_id = %(project_id)s
          AND ki.embedding_model = %(model)s{filters}
        ORDER BY {distance}
        LIMIT %(limit)s
        """).format(
        distance=_distance(dim),
        join=filters.join,
        dim=sql.Literal(int(dim)),
        filters=filters.clauses,
    )


@dataclass(frozen=True)
class VectorQuery:
    """One dense search: the project's chunks of `model` nearest `query_vector`, `limit` of
    them, under `filters` (values in `params`); `exact` computes every distance."""

    project_id: UUID
    model: str
    dim: int
    query_vector: Any
    limit: int
    filters: Filters
    params: dict[str, Any]
    exact: bool = False

    def values(self) -> dict[str, Any]:
        values = dict(self.params, project_id=self.project_id, model=self.model)
        values["query_vector"] = self.query_vector
        values["limit"] = self.limit
        return values

    def sql(self) -> sql.Composed:
        return vector_candidates_sql(self.dim, self.filters, exact=self.exact)


async def vector_candidates(conn: Conn, query: VectorQuery) -> list[tuple[UUID, float]]:
    """(id, cosine distance), nearest first: through the partial HNSW index for `dim`, or
    with `exact` by computing every distance."""
    cur = await conn.execute(query.sql(), query.values())
    rows = await cur.fetchall()
    # relaxed_order iterative scans may return neighbours slightly out of order.
    pairs = [(row["id"], float(row["distance"])) for row in rows]
    pairs.sort(key=lambda pair: pair[1])
    return pairs


async def vector_passages(conn: Conn, query: VectorQuery) -> list[dict[str, Any]]:
    """`vector_candidates` with each hit's passage (as `fetch_passages` reads it) in the same
    query, nearest first: one round trip and one copy of the query vector, not two."""
    statement = sql.SQL("""
        SELECT {columns}, 1 - c.distance AS similarity, c.distance
        FROM ({candidates}) c
        JOIN knowledge_items ki ON ki.id = c.id {passage_joins}
        """).format(columns=PASSAGE_COLUMNS, candidates=query.sql(), passage_joins=PASSAGE_JOINS)
    cur = await conn.execute(statement, query.values())
    rows = await cur.fetchall()
    rows.sort(key=lambda row: float(row["distance"]))  # the order of `vector_candidates`
    return rows


async def fetch_passages(
    conn: Conn, *, ids: list[UUID], dim: int | None, query_vector: Any | None
) -> dict[UUID, dict[str, Any]]:
    """Passage details by id; `similarity` is the cosine similarity when a vector is given."""
    if not ids:
        return {}
    similarity: sql.Composable = sql.SQL("NULL::float8")
    values: dict[str, Any] = {"ids": ids}
    if query_vector is not None and dim is not None:
        similarity = sql.SQL("1 - {distance}").format(distance=_distance(dim))
        values["query_vector"] = query_vector
    query = sql.SQL("""
        SELECT {columns}, {similarity} AS similarity
        FROM knowledge_items ki {passage_joins}
        WHERE ki.id = ANY(%(ids)s)
        """).format(columns=PASSAGE_COLUMNS, similarity=similarity, passage_joins=PASSAGE_JOINS)
    cur = await conn.execute(query, values)
    return {row["id"]: row for row in await cur.fetchall()}


async def count_items(conn: Conn, *, project_id: UUID) -> int:
    """How many chunks the project holds (all models)."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM knowledge_items WHERE project_id = %s", (project_id,)
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def count_chunks(
    conn: Conn, *, project_id: UUID, model: str, below: UUID | None = None
) -> int:
    """How many of the project's chunks of `model` there are; with `below`, how many have an
    id below it (ids are random UUIDs: a uniform sample)."""
    values: dict[str, Any] = {"project_id": project_id, "model": model, "below": below}
    query = (
        "SELECT count(*) AS n FROM knowledge_items "
        "WHERE project_id = %(project_id)s AND embedding_model = %(model)s"
    )
    if below is not None:
        query += " AND id < %(below)s"
    cur = await conn.execute(query, values)
    row = await cur.fetchone()
    return int(row["n"]) if row else 0
