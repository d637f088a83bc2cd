"""SQL for retrieval: the HNSW leg, the full-text leg and the passage details.

Both legs search only chunks of the project's embedding model, and `filters` are applied
inside the SQL of both legs. A document's chunks are always those of one version: ingestion
replaces them in one transaction when a new version is indexed (`knowledge.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
FulltextRank = Literal["bm25", "idf", "rank", "rank_cd"]
# ts_rank(tsv, one lexeme, 0) of a chunk holding it tf times is 0.1 * H / 1.645, where
# H = sum(1/j^2, j=1..tf) (PostgreSQL's calc_rank_or, default weights); pi^2/6 - H is close to
# 1 / (tf + 0.5), so tf comes back from the rank without reading the positions.
_TF_SCALE = 16.4493406685
_PI2_6 = 1.6449340668
_TERM_FREQUENCY = (
    "(CASE WHEN {r} > 0 THEN 1 / greatest({pi2_6} - {r} * {scale}, 0.004) - 0.5 ELSE 0 END)"
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
    exact: bool = False,
) -> list[tuple[UUID, float]]:
    """(id, cosine distance), nearest first: through the partial HNSW index for `dim`, or
    with `exact` by computing every distance."""
    values = dict(params, project_id=project_id, model=model, query_vector=query_vector)
    values["limit"] = limit
    cur = await conn.execute(vector_candidates_sql(dim, filters, exact=exact), values)
    rows = await cur.fetchall()
    # relaxed_order iterative scans may return neighbours slightly out of order.
    pairs = [(row["id"], float(row["distance"])) for row in rows]
    pairs.sort(key=lambda pair: pair[1])
    return pairs


def tsquery_term(lexeme: str) -> str:
    """A lexeme as tsquery input: quoted, so it is taken as it is (it is already normalised)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


async def query_lexemes(conn: Conn, *, ts_config: str, text: str) -> list[str]:
    """The distinct lexemes of `text` under the text-search configuration (stopwords gone)."""
    cur = await conn.execute(
        "SELECT tsvector_to_array(to_tsvector(%s::regconfig, %s)) AS lexemes", (ts_config, text)
    )
    row = await cur.fetchone()
    return list(row["lexemes"]) if row else []


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


async def sum_lengths(conn: Conn, *, project_id: UUID, model: str) -> int:
    """The lexemes of the project's chunks of `model`, summed (BM25's average length)."""
    cur = await conn.execute(
        "SELECT coalesce(sum(length(tsv)), 0) AS n FROM knowledge_items "
        "WHERE project_id = %s AND embedding_model = %s",
        (project_id, model),
    )
    row = await cur.fetchone()
    return int(row["n"]) if row else 0


@dataclass(frozen=True)
class Sample:
    """The project's chunks with an id below `below`: `sampled` of its `total` chunks. A
    lexeme found in at least `min_hits` of them is estimated from them, not counted."""

    below: UUID
    sampled: int
    total: int
    min_hits: int


_EXACT_COUNT = """(
    SELECT count(*) FROM knowledge_items k
    WHERE k.project_id = %(project_id)s AND k.embedding_model = %(model)s
      AND k.tsv @@ t.term::tsquery
)"""


async def count_lexemes(
    conn: Conn, *, project_id: UUID, model: str, lexemes: list[str], sample: Sample | None
) -> dict[str, int]:
    """How many of the project's chunks of `model` contain each lexeme, through the GIN index
    on `tsv`: counted exactly, or with `sample`, estimated from the sample for the common ones
    (counting those would read most of the project)."""
    if not lexemes:
        return {}
    values: dict[str, Any] = {
        "project_id": project_id,
        "model": model,
        "lexemes": lexemes,
        "terms": [tsquery_term(lexeme) for lexeme in lexemes],
    }
    if sample is None:
        query = f"""
            SELECT t.lexeme, 0 AS hits, {_EXACT_COUNT} AS exact
            FROM unnest(%(lexemes)s::text[], %(terms)s::text[]) AS t(lexeme, term)"""
    else:
        values.update(below=sample.below, min_hits=sample.min_hits)
        # The exact count runs only for lexemes too rare in the sample to estimate.
        query = f"""
            SELECT t.lexeme, s.hits,
                   CASE WHEN s.hits < %(min_hits)s THEN {_EXACT_COUNT} END AS exact
            FROM unnest(%(lexemes)s::text[], %(terms)s::text[]) AS t(lexeme, term)
            CROSS JOIN LATERAL (
                SELECT count(*) AS hits FROM knowledge_items k
                WHERE k.project_id = %(project_id)s AND k.embedding_model = %(model)s
                  AND k.tsv @@ t.term::tsquery AND k.id < %(below)s
            ) s"""
    cur = await conn.execute(query, values)
    frequencies: dict[str, int] = {}
    for row in await cur.fetchall():
        exact = row["exact"]
        if exact is None and sample is not None:
            frequencies[row["lexeme"]] = round(row["hits"] * sample.total / sample.sampled)
        else:
            frequencies[row["lexeme"]] = int(exact)
    return frequencies


@dataclass(frozen=True)
class LexicalQuery:
    """One full-text candidate query. `match` selects the chunks (tsquery text; None means
    `websearch_to_tsquery` of the query text), `exclude` drops chunks an earlier query ranked.
    Ranking: `idf` sums idf * ts_rank over `terms` ((tsquery term, idf) pairs); `rank` and
    `rank_cd` score against `rank_query` (tsquery text; None: the web-search query). With
    `cap`, only the first `cap` matching chunks found are ranked. `bm25` is `idf` with BM25's
    saturation (`k1`) and length normalisation (`b`, lexemes per chunk against `avg_length`)."""

    match: str | None
    rank: FulltextRank
    terms: list[tuple[str, float]] = field(default_factory=list)
    avg_length: float = 1.0
    k1: float = 1.2
    b: float = 0.75
    rank_query: str | None = None
    exclude: str | None = None
    cap: int | None = None


_WEBSEARCH = sql.SQL("websearch_to_tsquery(%(ts_config)s::regconfig, %(query_text)s)")


def _tsquery(param: str | None, name: str) -> sql.Composable:
    if param is None:
        return _WEBSEARCH
    return sql.SQL("{}::tsquery").format(sql.Placeholder(name))


def fulltext_candidates_sql(query: LexicalQuery, filters: Filters) -> sql.Composed:
    """The ranked candidates of one lexical query, best first; filters applied inside."""
    # ts_rank normalisation 1 divides by 1 + log(length): long chunks do not win on length.
    rank_fn: sql.Composable
    lateral: sql.Composable = sql.SQL("")
    if query.rank == "bm25":
        # BM25: term frequency from ts_rank (see _TF_SCALE), chunk length in distinct
        # lexemes (length() reads the tsvector's header only).
        norm = sql.SQL(
            "(%(k1)s::float8 * (1 - %(b)s::float8 + %(b)s::float8 * length(c.tsv)"
            " / %(avg_length)s::float8))"
        )
        rank_fn = sql.SQL(" + ").join(
            sql.SQL("{w}::float8 * (%(k1)s::float8 + 1) * ({s}) / (({s}) + {norm})").format(
                w=sql.Placeholder(f"w_{i}"),
                s=sql.SQL(_TERM_FREQUENCY).format(
                    r=sql.Identifier("r", f"r_{i}"),
                    pi2_6=sql.Literal(_PI2_6),
                    scale=sql.Literal(_TF_SCALE),
                ),
                norm=norm,
            )
            for i in range(len(query.terms))
        )
        if not query.terms:
            rank_fn = sql.SQL("0::float8")
        else:
            # Each lexeme's ts_rank once per chunk (the score reads it three times; OFFSET 0
            # keeps the planner from inlining the subquery).
            lateral = sql.SQL(" CROSS JOIN LATERAL (SELECT {} OFFSET 0) r").format(
                sql.SQL(", ").join(
                    sql.SQL("ts_rank(c.tsv, {}::tsquery, 0) AS {}").format(
                        sql.Placeholder(f"t_{i}"), sql.Identifier(f"r_{i}")
                    )
                    for i in range(len(query.terms))
                )
            )
    elif query.rank == "idf":
        # A BM25-like score: a rare identifier outweighs common words. ts_rank of a lexeme a
        # chunk lacks is 0, so the sum needs no per-lexeme match test.
        rank_fn = sql.SQL(" + ").join(
            sql.SQL("{w}::float8 * ts_rank(c.tsv, {t}::tsquery, 1)").format(
                w=sql.Placeholder(f"w_{i}"), t=sql.Placeholder(f"t_{i}")
            )
            for i in range(len(query.terms))
        )
        if not query.terms:
            rank_fn = sql.SQL("0::float8")
    else:
        function = sql.SQL("ts_rank_cd" if query.rank == "rank_cd" else "ts_rank")
        rank_fn = sql.SQL("{}(c.tsv, {}, 1)").format(
            function, _tsquery(query.rank_query, "rank_query")
        )
    exclude: sql.Composable = sql.SQL("")
    if query.exclude is not None:
        exclude = sql.SQL(" AND NOT ki.tsv @@ %(exclude)s::tsquery")
    # OFFSET 0 keeps the subquery from being flattened, so `tsv || ''` below runs once per
    # chunk: it detoasts the vector once, where each ts_rank would fetch a TOASTed one again.
    cap: sql.Composable = sql.SQL(" OFFSET 0")
    if query.cap is not None:
        cap = sql.SQL(" LIMIT %(cap)s")
    return sql.SQL("""
        SELECT c.id, {rank_fn} AS rank
        FROM (
            SELECT ki.id, ki.tsv || ''::tsvector AS tsv
            FROM knowledge_items ki {join}
            WHERE ki.project_id = %(project_id)s
              AND ki.embedding_model = %(model)s
              AND ki.tsv @@ {match}{exclude}{filters}{cap}
        ) c{lateral}
        ORDER BY rank DESC, c.id
        LIMIT %(limit)s
        """).format(
        rank_fn=rank_fn,
        lateral=lateral,
        join=filters.join,
        match=_tsquery(query.match, "match"),
        exclude=exclude,
        filters=filters.clauses,
        cap=cap,
    )


async def fulltext_candidates(
    conn: Conn,
    *,
    project_id: UUID,
    model: str,
    ts_config: str,
    query_text: str,
    query: LexicalQuery,
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
        match=query.match,
        rank_query=query.rank_query,
        exclude=query.exclude,
        cap=query.cap,
        limit=limit,
        avg_length=max(query.avg_length, 1.0),
        k1=query.k1,
        b=query.b,
    )
    for i, (term, idf) in enumerate(query.terms):
        values[f"t_{i}"] = term
        values[f"w_{i}"] = idf
    cur = await conn.execute(fulltext_candidates_sql(query, filters), values)
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
