"""The lexical leg: PostgreSQL full-text search with the project's text-search configuration.

`websearch_to_tsquery` ANDs every term, so a natural-language question usually matches
nothing. By default the query's lexemes are OR-ed instead (ranked with `ts_rank`); a query
written with web-search syntax (quoted phrases, `-term`, `or`) keeps its exact meaning.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from lorebase.db import Conn
from lorebase.retrieval import repository
from lorebase.retrieval.repository import FulltextOperator, FulltextRank

_WEBSEARCH_SYNTAX = re.compile(r'"[^"]+"|(?:^|\s)-\w|\s(?:or|OR)\s')


def uses_websearch_syntax(text: str) -> bool:
    """True when the user wrote web-search operators: a quoted phrase, `-term` or `or`."""
    return _WEBSEARCH_SYNTAX.search(text) is not None


def effective_operator(text: str, configured: FulltextOperator) -> FulltextOperator:
    return "and" if uses_websearch_syntax(text) else configured


async def search_fulltext(
    conn: Conn,
    *,
    project_id: UUID,
    model: str,
    ts_config: str,
    query_text: str,
    operator: FulltextOperator,
    rank: FulltextRank,
    limit: int,
    filters: repository.Filters,
    params: dict[str, Any],
) -> list[tuple[UUID, float]]:
    """Chunks matching the query as (id, rank), best first."""
    return await repository.fulltext_candidates(
        conn,
        project_id=project_id,
        model=model,
        ts_config=ts_config,
        query_text=query_text,
        operator=effective_operator(query_text, operator),
        rank=rank,
        limit=limit,
        filters=filters,
        params=params,
    )
