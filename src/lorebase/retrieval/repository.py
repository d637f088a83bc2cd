"""SQL for retrieval: the HNSW leg, the full-text leg and the passage details.

Both legs search only chunks of the project's embedding model, and `filters` are applied
inside the SQL of both legs. A document's chunks are always those of one version: ingestion
replaces them in one transaction when a new version is indexed (`knowledge.pipeline`).
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from lorebase.db import Conn

# Dimensions with a partial HNSW index in migration 0001 (vector, or halfvec above 2000).
VECTOR_INDEX_DIMS = frozenset({384, 512, 768, 1024, 1536})
HALFVEC_INDEX_DIMS = frozenset({3072})

_DOCUMENTS = sql.SQL("JOIN documents d ON d.id = ki.document_id")

FulltextOperator = Literal["or", "and"]
FulltextRank = Literal["idf", "rank", "rank_cd"]


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
        self.join = _DOCUMENTS if join_documents else sql.SQL("")


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
    if document_ids:
        params["f_document_ids"] = list(document_ids)
        clauses.append(sql.SQL("ki.document_id = ANY(%(f_document_ids)s)"))
    if tags:
        params["f_tags"] = list(tags)
        clauses.append(sql.SQL("d.tags && %(f_tags)s::text[]"))
    if types:
        params["f_types"] = list(types)
        clauses.append(sql.SQL("d.type = ANY(%(f_types)s::text[])"))
    if metadata:
        params["f_metadata"] = Jsonb(metadata)
        clauses.append(sql.SQL("(ki.metadata @> %(f_metadata)s OR d.metadata @> %(f_metadata)s)"))
    join_documents = bool(tags or types or metadata)
    if not clauses:
        return Filters(sql.SQL(""), join_documents=False)
    return Filters(sql.SQL(" AND ") + sql.SQL(" AND ").join(clauses), join_documents=join_documents)


async def set_ef_search(conn: Conn, *, ef_search: int) -> None:
    """`SET LOCAL hnsw.ef_search` for the current transaction."""
    await conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(int(ef_search)),))


def vector_candidates_sql(dim: int, filters: Filters) -> sql.Composed:
    """The HNSW leg; the dimension is a literal so the partial index's predicate matches."""
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


async def vector_candidates(
    conn: Conn,
    *,
    project_id: UUID,
    model: str,
    dim: int,
    query_vector: Any,
    limit: int,
    filters: Filters,
    params: dict[str, Any],
) -> list[tuple[UUID, float]]:
    """(id, cosine distance), nearest first, through the partial HNSW index for `dim`."""
    values = dict(params, project_id=project_id, model=model, query_vector=query_vector)
    values["limit"] = limit
    cur = await conn.execute(vector_candidates_sql(dim, filters), values)
    rows = await cur.fetchall()
    # relaxed_order iterative scans may return neighbours slightly out of order.
    pairs = [(row["id"], float(row["distance"])) for row in rows]
    pairs.sort(key=lambda pair: pair[1])
    return pairs


# Lexemes are quoted for tsquery input (quotes and backslashes doubled).
_QUOTED_LEXEME = r"'''' || replace(replace(lex, '\', '\\'), '''', '''''') || ''''"
_QUERY_LEXEMES = (
    "unnest(tsvector_to_array(to_tsvector(%(ts_config)s::regconfig, %(query_text)s))) AS lex"
)


def _or_tsquery() -> sql.Composable:
    # Every lexeme of the query, OR-ed: natural-language questions would match nothing as an
    # AND of their words.
    return sql.SQL(
        "(SELECT coalesce(string_agg("
        + _QUOTED_LEXEME
        + ", ' | '), '')::tsquery FROM "
        + _QUERY_LEXEMES
        + ")"
    )


# `idf`: a BM25-like score, the sum over the query's lexemes of idf(lexeme) * ts_rank(chunk,
# lexeme), so a rare identifier outweighs common words. Document frequencies are counted
# through the GIN index over the project's chunks of the current model.
_IDF_CTES = sql.SQL(
    "terms AS MATERIALIZED (SELECT DISTINCT ("
    + _QUOTED_LEXEME
    + ")::tsquery AS q FROM "
    + _QUERY_LEXEMES
    + """),
    corpus AS MATERIALIZED (
        SELECT count(*)::float8 AS n FROM knowledge_items
        WHERE project_id = %(project_id)s AND embedding_model = %(model)s
    ),
    weighted AS MATERIALIZED (
        SELECT t.q, ln(1 + (c.n - f.df + 0.5) / (f.df + 0.5)) AS idf
        FROM terms t CROSS JOIN corpus c
        CROSS JOIN LATERAL (
            SELECT count(*)::float8 AS df FROM knowledge_items k
            WHERE k.project_id = %(project_id)s AND k.embedding_model = %(model)s
              AND k.tsv @@ t.q
        ) f
        WHERE f.df > 0
    ),"""
)


def fulltext_candidates_sql(
    *, operator: FulltextOperator, rank: FulltextRank, filters: Filters
) -> sql.Composed:
    query = (
        _or_tsquery()
        if operator == "or"
        else sql.SQL("websearch_to_tsquery(%(ts_config)s::regconfig, %(query_text)s)")
    )
    ctes: sql.Composable = sql.SQL("")
    # ts_rank normalisation 1 divides by 1 + log(length): long chunks do not win on length.
    if rank == "idf":
        ctes = _IDF_CTES
        rank_fn = sql.SQL(
            "(SELECT coalesce(sum(w.idf * ts_rank(ki.tsv, w.q, 1)), 0) FROM weighted w "
            "WHERE ki.tsv @@ w.q)"
        )
    elif rank == "rank_cd":
        rank_fn = sql.SQL("ts_rank_cd(ki.tsv, q.query, 1)")
    else:
        rank_fn = sql.SQL("ts_rank(ki.tsv, q.query, 1)")
    return sql.SQL("""
        WITH {ctes} q AS MATERIALIZED (SELECT {query} AS query)
        SELECT ki.id, {rank_fn} AS rank
        FROM q, knowledge_items ki {join}
        WHERE ki.project_id = %(project_id)s
          AND ki.embedding_model = %(model)s
          AND ki.tsv @@ q.query{filters}
        ORDER BY rank DESC, ki.id
        LIMIT %(limit)s
        """).format(
        ctes=ctes, query=query, rank_fn=rank_fn, join=filters.join, filters=filters.clauses
    )


async def fulltext_candidates(
    conn: Conn,
    *,
    project_id: UUID,
    model: str,
    ts_config: str,
    query_text: str,
    operator: FulltextOperator,
    rank: FulltextRank,
    limit: int,
    filters: Filters,
    params: dict[str, Any],
) -> list[tuple[UUID, float]]:
    """(id, text-search rank), best first, through the GIN index on `tsv`."""
    values = dict(
        params,
        project_id=project_id,
        model=model,
        ts_config=ts_config,
        query_text=query_text,
        limit=limit,
    )
    cur = await conn.execute(
        fulltext_candidates_sql(operator=operator, rank=rank, filters=filters), values
    )
    return [(row["id"], float(row["rank"])) for row in await cur.fetchall()]


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
        SELECT ki.id, ki.document_id, d.name AS document_name, dv.version, d.type,
               d.tags, ki.chunk_index, ki.chunk_text, ki.metadata, {similarity} AS similarity
        FROM knowledge_items ki
        JOIN documents d ON d.id = ki.document_id
        JOIN document_versions dv ON dv.id = ki.document_version_id
        WHERE ki.id = ANY(%(ids)s)
        """).format(similarity=similarity)
    cur = await conn.execute(query, values)
    return {row["id"]: row for row in await cur.fetchall()}


async def count_items(conn: Conn, *, project_id: UUID) -> int:
    """How many chunks the project holds (all models)."""
    cur = await conn.execute(
        "SELECT count(*) AS n FROM knowledge_items WHERE project_id = %s", (project_id,)
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0
