"""Prometheus counters of the retrieval caches (served by `GET /metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

ANSWER_CACHE = Counter(
    "lorebase_answer_cache_requests_total",
    "Answer-cache lookups of /rag/query by result (hit or miss).",
    ["result"],
)

QUERY_EMBEDDING_CACHE = Counter(
    "lorebase_query_embedding_cache_requests_total",
    "Query-embedding cache lookups by result (hit or miss).",
    ["result"],
)

TERM_FREQUENCIES = Counter(
    "lorebase_fulltext_term_frequencies_total",
    "Document frequencies the lexical leg needed, by where they came from "
    "(memory, redis or database: counted).",
    ["source"],
)
