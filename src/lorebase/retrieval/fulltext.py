"""The lexical leg: PostgreSQL full-text search with the project's text-search configuration.

`websearch_to_tsquery` ANDs every term, so a natural-language question usually matches
nothing. By default the query's lexemes are OR-ed instead and ranked by idf * ts_rank; a query
written with web-search syntax (quoted phrases, `-term`, `OR`) keeps its exact meaning.

Ranking every chunk that contains any query word would read most of a large project (a common
word is in tens of thousands of chunks), so an OR query ranks only the chunks that contain its
rarer lexemes: rarest first while their summed document frequencies stay within the candidate
budget. Every lexeme still contributes to the score of those candidates. A corpus smaller than
the budget is never pruned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from lorebase.cache import Cache
from lorebase.db import Conn
from lorebase.retrieval import lexical_repository, repository
from lorebase.retrieval.frequency import Corpus, FrequencyMemo, TermStats, term_stats
from lorebase.retrieval.fusion import is_question
from lorebase.retrieval.lexical_repository import (
    FulltextOperator,
    FulltextRank,
    LexicalQuery,
    TextScope,
    negated_words,
    tsquery_term,
)

# `OR` only in capitals: "stable or development version?" is a question, not an operator
# (as `or` it made the query an AND of every word, which matched almost nothing). `-x` of one
# character is a command-line option: "curl -X gives me HTTP problems" excludes nothing.
_WEBSEARCH_SYNTAX = re.compile(r'"[^"]+"|(?:^|\s)-\w\w|\sOR\s')


def uses_websearch_syntax(text: str) -> bool:
    """True when the user wrote web-search operators: a quoted phrase, `-term` (two or more
    characters) or `OR`, and not in a question ("Why does my posting using -F not work?" names
    curl's option `-F`; it does not exclude the word "f")."""
    return _WEBSEARCH_SYNTAX.search(text) is not None and not is_question(text)


def effective_operator(text: str, configured: FulltextOperator) -> FulltextOperator:
    return "and" if uses_websearch_syntax(text) else configured


# Tiers of common words: chunks holding all of the (at most) this many rarest, then one fewer.
COMMON_WORDS = 3


@dataclass(frozen=True)
class Tier:
    """Chunks to rank (tsquery text), less those earlier tiers ranked. A `capped` tier (common
    words) ranks only the first `budget` chunks it finds."""

    match: str
    exclude: str | None = None
    capped: bool = False


def candidate_tiers(frequencies: dict[str, int], *, total: int, budget: int) -> list[Tier]:
    """Which chunks an OR query ranks, in tiers, from its lexemes' document frequencies (all
    > 0) among `total` chunks. A tier is ranked only when the tiers before it held fewer
    chunks than the leg asks for.

    Each tier ORs the next rarest lexemes while their summed frequencies (at most `total`)
    fit `budget`. Once the next lexeme alone is over budget, so are all after it: only common
    words are left, and the chunks holding more of them come first (all of the three rarest,
    then the two rarest, then the rarest), each tier capped at `budget` chunks.
    """
    ordered = sorted(frequencies, key=lambda lexeme: (frequencies[lexeme], lexeme))
    tiers: list[Tier] = []
    ranked: list[str] = []

    def add(match: str, *, capped: bool = False) -> None:
        exclude = " | ".join(f"({m})" for m in ranked) or None
        tiers.append(Tier(match, exclude=exclude, capped=capped))
        ranked.append(match)

    start = 0
    while start < len(ordered):
        end, spent = start, 0
        while end < len(ordered) and min(spent + frequencies[ordered[end]], total) <= budget:
            spent += frequencies[ordered[end]]
            end += 1
        if end == start:
            break
        add(" | ".join(tsquery_term(lexeme) for lexeme in ordered[start:end]))
        start = end
    common = [tsquery_term(lexeme) for lexeme in ordered[start : start + COMMON_WORDS]]
    for size in range(len(common), 0, -1):
        add(" & ".join(common[:size]), capped=True)
    return tiers


@dataclass(frozen=True)
class _Leg:
    """What every candidate query of one search shares."""

    conn: Conn
    scope: TextScope

    async def ranked(self, query: LexicalQuery, count: int) -> list[tuple[UUID, float]]:
        return await lexical_repository.fulltext_candidates(
            self.conn, self.scope, query, limit=count
        )


def _weighted_terms(
    rank: FulltextRank, present: dict[str, int], counts: dict[str, int], stats: TermStats
) -> list[tuple[str, float]]:
    """Each lexeme the corpus holds as a tsquery term and its idf weight; BM25 weighs a word
    the query repeats by its count (as rank_bm25 does)."""
    repeats = rank == "bm25"
    return [
        (tsquery_term(lexeme), stats.idf(lexeme) * (counts[lexeme] if repeats else 1))
        for lexeme in present
    ]


async def search_fulltext(
    conn: Conn,
    *,
    cache: Cache | None,
    memo: FrequencyMemo,
    corpus: Corpus,
    ts_config: str,
    query_text: str,
    operator: FulltextOperator,
    rank: FulltextRank,
    candidate_budget: int,
    limit: int,
    filters: repository.Filters,
    params: dict[str, Any],
) -> list[tuple[UUID, float]]:
    """Chunks matching the query as (id, rank), best first. An OR query ranks its candidate
    tiers in turn until `limit` chunks are found; web-search syntax ranks every match, then
    (ranked by idf or BM25, under FULLTEXT_OPERATOR=or, without a negated word) the chunks
    with the query's other words, if the matches are fewer than `limit`."""
    scope = TextScope(corpus.project_id, corpus.model, ts_config, query_text, filters, params)
    leg = _Leg(conn, scope)
    websearch = effective_operator(query_text, operator) == "and"
    weighted = rank in ("idf", "bm25")
    if websearch and not weighted:
        return await leg.ranked(LexicalQuery(match=None, rank=rank), limit)
    counts = await lexical_repository.query_lexemes(conn, ts_config=ts_config, text=query_text)
    if not counts:
        return []
    lexemes = list(counts)
    stats = await term_stats(conn, cache=cache, memo=memo, corpus=corpus, lexemes=lexemes)
    present = {lexeme: df for lexeme, df in stats.frequencies.items() if df > 0}
    terms = _weighted_terms(rank, present, counts, stats) if weighted else []
    scoring = LexicalQuery(match=None, rank=rank, terms=terms, avg_length=stats.avg_length)
    if websearch:
        hits = await leg.ranked(scoring, limit)
        # A quoted error message is how anyone cites it, not a filter: when its exact matches
        # are fewer than asked for, the chunks with its other words follow them. A negated
        # word is deliberate syntax, and FULLTEXT_OPERATOR=and asks for every word: both stay
        # exact.
        if len(hits) >= limit or operator == "and" or negated_words(query_text) or not present:
            return hits
        exact = await lexical_repository.websearch_tsquery(
            conn, ts_config=ts_config, text=query_text
        )
        fill = replace(scoring, exclude=f"({exact})" if exact else None)
        tiers = candidate_tiers(present, total=stats.total, budget=candidate_budget)
        return hits + await _ranked_tiers(leg, tiers, fill, candidate_budget, limit - len(hits))
    if not present:
        return []
    tiers = candidate_tiers(present, total=stats.total, budget=candidate_budget)
    every = " | ".join(tsquery_term(lexeme) for lexeme in lexemes)
    return await _ranked_tiers(
        leg, tiers, replace(scoring, rank_query=every), candidate_budget, limit
    )


async def _ranked_tiers(
    leg: _Leg, tiers: list[Tier], scoring: LexicalQuery, budget: int, limit: int
) -> list[tuple[UUID, float]]:
    """The tiers ranked in turn (scored as `scoring`, less the chunks its `exclude` matches)
    until `limit` chunks are found."""
    hits: list[tuple[UUID, float]] = []
    for tier in tiers:
        excluded = [f"({e})" for e in (scoring.exclude, tier.exclude) if e is not None]
        query = replace(
            scoring,
            match=tier.match,
            exclude=" | ".join(excluded) or None,
            cap=budget if tier.capped else None,
        )
        hits += await leg.ranked(query, limit)
        if len(hits) >= limit:
            break
    if len(hits) > limit:
        # The tiers before the last returned all they ranked: this is the top of them all.
        hits.sort(key=lambda hit: (-hit[1], hit[0]))
        del hits[limit:]
    return hits
