"""SQL of the full-text leg: query lexemes, document-frequency counts and the ranked
candidates (idf, BM25-like or ts_rank), inside the same filters as the vector leg.

Text is analysed as `knowledge_items.tsv` is (migration 0005): `lorebase_tsvector(config,
text)` splits at every non-word character, keeps identifiers whole as well and indexes every
word, under `lorebase_tsconfig(config)` (`lorebase_english` for `english`). A query under
`english` drops its `QUERY_STOP_WORDS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, Literal
from uuid import UUID

from psycopg import sql

from lorebase.db import Conn
from lorebase.retrieval.repository import Filters

FulltextOperator = Literal["or", "and"]
FulltextRank = Literal["bm25", "idf", "rank", "rank_cd"]
# ts_rank(tsv, one lexeme, 0) of a chunk holding it tf times is 0.1 * H / 1.645, where
# H = sum(1/j^2, j=1..tf) (PostgreSQL's calc_rank_or, default weights); pi^2/6 - H is close to
# 1 / (tf + 0.5), so tf comes back from the rank without reading the positions: rounded, since
# the estimate is 1-3% high (1.05 for 1, 3.02 for 3), enough to swap two chunks in a near tie.
_TF_SCALE = 16.4493406685
_PI2_6 = 1.6449340668
_TERM_FREQUENCY = (
    "(CASE WHEN {r} > 0 THEN round(1 / greatest({pi2_6} - {r} * {scale}, 0.004) - 0.5)"
    " ELSE 0 END)"
)


# The question words a query under `english` drops (the index keeps every word). Short on
# purpose: PostgreSQL's 127-word list drops words that carry meaning in a question ("not",
# "up", "off", "before", "after", "no", "only").
QUERY_STOP_WORDS = (
    "a an and are as at be by for from has have how i if in is it of on or that the this to "
    "was what when where which who why will with do does can my you your not"
)


def query_stop_words(ts_config: str) -> str:
    """The stop words a query under `ts_config` drops: none outside English (`simple` is for
    code, where `if`, `for`, `in` and `not` are what one searches for)."""
    return QUERY_STOP_WORDS if ts_config == "english" else ""


_NOT_WORD = re.compile(r'[^\w"]+')
_NEGATED = re.compile(r"-\w\w")


def websearch_text(text: str) -> str:
    """`text` for `websearch_to_tsquery` under the project's analysis: quotes and `OR` kept,
    a word-leading `-` kept where it negates a word of two or more characters, every other
    non-word character a space (`-F` and `--verbose` are options, not negations; a hyphen
    inside a word splits it as the index does)."""
    parts = []
    for token in text.split():
        negated = _NEGATED.match(token) is not None
        words = _NOT_WORD.sub(" ", token).strip()
        if words:
            parts.append(("-" if negated else "") + words)
    return " ".join(parts)


def negated_words(text: str) -> list[str]:
    """The words `text` negates in web-search syntax (`-word`, two or more characters)."""
    return [
        _NOT_WORD.sub(" ", token[1:]).strip()
        for token in text.split()
        if _NEGATED.match(token) is not None
    ]


async def websearch_tsquery(conn: Conn, *, ts_config: str, text: str) -> str:
    """The web-search query of `text` as tsquery text ("" when it has no word)."""
    cur = await conn.execute(
        "SELECT websearch_to_tsquery(lorebase_tsconfig(%s::regconfig), %s)::text AS q",
        (ts_config, websearch_text(text)),
    )
    row = await cur.fetchone()
    return str(row["q"]) if row else ""


def tsquery_term(lexeme: str) -> str:
    """A lexeme as tsquery input: quoted, so it is taken as it is (it is already normalised)."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


async def query_lexemes(conn: Conn, *, ts_config: str, text: str) -> dict[str, int]:
    """The lexemes of `text` as the index analyses it, each with how often the text has it;
    under `english`, less the query stop words."""
    cur = await conn.execute(
        """SELECT l.lexeme, coalesce(array_length(l.positions, 1), 1) AS n
           FROM unnest(ts_delete(
               lorebase_tsvector(%(config)s::regconfig, %(text)s),
               tsvector_to_array(lorebase_tsvector(%(config)s::regconfig, %(stops)s))
           )) AS l""",
        {"config": ts_config, "text": text, "stops": query_stop_words(ts_config)},
    )
    return {row["lexeme"]: int(row["n"]) for row in await cur.fetchall()}


async def sum_lengths(conn: Conn, *, project_id: UUID, model: str) -> int:
    """The tokens of the project's chunks of `model`, summed (BM25's average length)."""
    cur = await conn.execute(
        "SELECT coalesce(sum(tsv_length), 0) AS n FROM knowledge_items "
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
    saturation (`k1`) and length normalisation (`b`, tokens per chunk against `avg_length`);
    its weights are idf times the lexeme's count in the query."""

    match: str | None
    rank: FulltextRank
    terms: list[tuple[str, float]] = field(default_factory=list)
    avg_length: float = 1.0
    k1: float = 1.2
    b: float = 0.75
    rank_query: str | None = None
    exclude: str | None = None
    cap: int | None = None

    def placeholders(self) -> dict[str, Any]:
        """The values of its SQL placeholders: its fields, named alike (the SQL reads those it
        uses), and term i as `t_i`, weighted `w_i`."""
        # Shallow: `asdict` would deep-copy `terms` on every full-text search.
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["avg_length"] = max(self.avg_length, 1.0)
        for i, (term, idf) in enumerate(self.terms):
            values[f"t_{i}"] = term
            values[f"w_{i}"] = idf
        return values


@dataclass(frozen=True)
class TextScope:
    """What every candidate query of one search shares: the project's chunks of one embedding
    model, the text-search configuration, the query text and the filters (values in `params`)."""

    project_id: UUID
    model: str
    ts_config: str
    query_text: str
    filters: Filters
    params: dict[str, Any]

    def placeholders(self) -> dict[str, Any]:
        return dict(
            self.params,
            project_id=self.project_id,
            model=self.model,
            ts_config=self.ts_config,
            query_text=websearch_text(self.query_text),
        )


_WEBSEARCH = sql.SQL(
    "websearch_to_tsquery(lorebase_tsconfig(%(ts_config)s::regconfig), %(query_text)s)"
)


def _tsquery(param: str | None, name: str) -> sql.Composable:
    if param is None:
        return _WEBSEARCH
    return sql.SQL("{}::tsquery").format(sql.Placeholder(name))


def _bm25_rank(query: LexicalQuery) -> tuple[sql.Composable, sql.Composable]:
    """BM25: term frequency from ts_rank (see _TF_SCALE), chunk length in tokens
    (`tsv_length`, stored with the chunk). The score, and the lateral join computing
    each lexeme's ts_rank once per chunk (the score reads it three times; OFFSET 0 keeps the
    planner from inlining the subquery)."""
    if not query.terms:
        return sql.SQL("0::float8"), sql.SQL("")
    norm = sql.SQL(
        "(%(k1)s::float8 * (1 - %(b)s::float8 + %(b)s::float8 * c.tsv_length"
        " / %(avg_length)s::float8))"
    )
    score = sql.SQL(" + ").join(
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
    lateral = sql.SQL(" CROSS JOIN LATERAL (SELECT {} OFFSET 0) r").format(
        sql.SQL(", ").join(
            sql.SQL("ts_rank(c.tsv, {}::tsquery, 0) AS {}").format(
                sql.Placeholder(f"t_{i}"), sql.Identifier(f"r_{i}")
            )
            for i in range(len(query.terms))
        )
    )
    return score, lateral


def _idf_rank(query: LexicalQuery) -> sql.Composable:
    """A BM25-like score: a rare identifier outweighs common words. ts_rank of a lexeme a
    chunk lacks is 0, so the sum needs no per-lexeme match test; normalisation 1 divides by
    1 + log(length), so long chunks do not win on length."""
    if not query.terms:
        return sql.SQL("0::float8")
    return sql.SQL(" + ").join(
        sql.SQL("{w}::float8 * ts_rank(c.tsv, {t}::tsquery, 1)").format(
            w=sql.Placeholder(f"w_{i}"), t=sql.Placeholder(f"t_{i}")
        )
        for i in range(len(query.terms))
    )


def _rank_sql(query: LexicalQuery) -> tuple[sql.Composable, sql.Composable]:
    """The rank expression of `query.rank` over the subquery `c`, and any join it needs."""
    if query.rank == "bm25":
        return _bm25_rank(query)
    if query.rank == "idf":
        return _idf_rank(query), sql.SQL("")
    function = sql.SQL("ts_rank_cd" if query.rank == "rank_cd" else "ts_rank")
    plain = sql.SQL("{}(c.tsv, {}, 1)").format(function, _tsquery(query.rank_query, "rank_query"))
    return plain, sql.SQL("")


def fulltext_candidates_sql(query: LexicalQuery, filters: Filters) -> sql.Composed:
    """The ranked candidates of one lexical query, best first; filters applied inside."""
    rank_fn, lateral = _rank_sql(query)
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
            SELECT ki.id, ki.tsv || ''::tsvector AS tsv, ki.tsv_length
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
    conn: Conn, scope: TextScope, query: LexicalQuery, *, limit: int
) -> list[tuple[UUID, float]]:
    """(id, text-search rank), best first, through the GIN index on `tsv`."""
    values = {**scope.placeholders(), **query.placeholders(), "limit": limit}
    cur = await conn.execute(fulltext_candidates_sql(query, scope.filters), values)
    return [(row["id"], float(row["rank"])) for row in await cur.fetchall()]
