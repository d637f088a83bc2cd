"""Document frequencies for the lexical leg's idf weights, counted once per corpus generation.

Counting the chunks that contain a common word reads most of a large project, so the counts
(and the project's chunk count) are kept under (project, embedding model, corpus generation):
in a small per-process LRU and in Redis, shared by every worker. A knowledge change bumps the
generation, so stale counts are never read again (Redis lets them expire). A Redis outage only
means counting again.

A miss is counted exactly only when that is cheap: in a project larger than the sample, a
lexeme that a uniform sample of the chunks (those with the lowest ids; ids are random UUIDs)
finds often enough is estimated from it (relative error about 1/sqrt(hits)). A project within
the sample size is always counted exactly.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from lorebase.cache import Cache
from lorebase.db import Conn
from lorebase.memo import Abandoned, CountMemo
from lorebase.retrieval import lexical_repository, repository
from lorebase.retrieval.metrics import TERM_FREQUENCIES

FREQUENCY_CACHE_VERSION = "2"  # 2: the analysis of migration 0005
FREQUENCY_TTL_SECONDS = 86400
# Fields of a generation's hash that are not lexemes (no lexeme is empty or holds a space).
_TOTAL = ""
_SAMPLED = " "
_LENGTHS = "  "  # the chunks' tokens, summed


@dataclass(frozen=True)
class Corpus:
    """Whose chunks are counted: a project's chunks of one embedding model, at a generation."""

    project_id: UUID
    model: str
    generation: int


@dataclass(frozen=True)
class Counting:
    """How a miss is counted: chunks in the sample, and the sample hits from which a lexeme
    is estimated instead of counted (50: within ~14%; exact below ~1,000 of 100k chunks)."""

    sample_size: int = 5_000
    min_hits: int = 50

    def sample_below(self, total: int) -> UUID | None:
        """The id bound of a `sample_size` sample of `total` chunks (None: count them all)."""
        if total <= self.sample_size:
            return None
        return UUID(int=int(self.sample_size / total * 2**128))


@dataclass(frozen=True)
class TermStats:
    """The corpus size and the document frequency of each query lexeme (0: no chunk has it)."""

    total: int
    frequencies: dict[str, int]
    length_sum: int = 0

    @property
    def avg_length(self) -> float:
        """Tokens per chunk, on average (BM25's average document length)."""
        return self.length_sum / self.total if self.total else 1.0

    def idf(self, lexeme: str) -> float:
        """BM25's idf: ln(1 + (N - df + 0.5) / (df + 0.5))."""
        df = self.frequencies[lexeme]
        # An estimated frequency may exceed the corpus: it is then as common as can be.
        return math.log(1 + (max(self.total - df, 0) + 0.5) / (df + 0.5))


Key = tuple[UUID, str, int, Counting, str]


# A bounded per-process LRU of counts in front of Redis (`lorebase.memo.CountMemo`).
FrequencyMemo = CountMemo[Key]


def memo_key(corpus: Corpus, counting: Counting, field: str) -> Key:
    """A count's key in the per-process memo."""
    return (corpus.project_id, corpus.model, corpus.generation, counting, field)


def frequency_key(cache: Cache, corpus: Corpus, counting: Counting) -> str:
    """The Redis hash of a corpus generation's counts: field = lexeme ("" = chunk count)."""
    return cache.key(
        "df",
        FREQUENCY_CACHE_VERSION,
        str(corpus.project_id),
        str(corpus.generation),
        f"{counting.sample_size}-{counting.min_hits}",
        corpus.model,
    )


Counter = Callable[[list[str]], Awaitable[dict[str, int]]]


async def term_stats(
    conn: Conn,
    *,
    cache: Cache | None,
    memo: FrequencyMemo,
    corpus: Corpus,
    lexemes: list[str],
    counting: Counting = Counting(),
) -> TermStats:
    """The chunk count and the lexemes' document frequencies: from the LRU, else Redis, else
    counted in PostgreSQL (and then remembered in both)."""

    async def count_sizes(_fields: list[str]) -> dict[str, int]:
        total = await repository.count_chunks(
            conn, project_id=corpus.project_id, model=corpus.model
        )
        below = counting.sample_below(total)
        sampled = total
        if below is not None:
            sampled = await repository.count_chunks(
                conn, project_id=corpus.project_id, model=corpus.model, below=below
            )
        lengths = await lexical_repository.sum_lengths(
            conn, project_id=corpus.project_id, model=corpus.model
        )
        return {_TOTAL: total, _SAMPLED: sampled, _LENGTHS: lengths}

    fields = [_TOTAL, _SAMPLED, _LENGTHS]
    sizes = await _resolve(cache, memo, corpus, counting, fields, count_sizes)
    total, sampled = sizes[_TOTAL], sizes[_SAMPLED]
    below = counting.sample_below(total)
    sample = None
    if below is not None and sampled > 0:
        sample = lexical_repository.Sample(
            below=below, sampled=sampled, total=total, min_hits=counting.min_hits
        )

    async def count(fields: list[str]) -> dict[str, int]:
        return await lexical_repository.count_lexemes(
            conn, project_id=corpus.project_id, model=corpus.model, lexemes=fields, sample=sample
        )

    frequencies = await _resolve(cache, memo, corpus, counting, lexemes, count)
    return TermStats(total=total, frequencies=frequencies, length_sum=sizes[_LENGTHS])


async def _resolve(
    cache: Cache | None,
    memo: FrequencyMemo,
    corpus: Corpus,
    counting: Counting,
    fields: list[str],
    count: Counter,
) -> dict[str, int]:
    """`fields` from the LRU, or waiting for a request already counting them, else Redis,
    else `count`."""
    found: dict[str, int] = {}
    waiting: dict[str, asyncio.Future[int]] = {}
    missing: list[str] = []
    for field in fields:
        key = memo_key(corpus, counting, field)
        value = memo.get(key)
        future = memo.pending(key) if value is None else None
        if value is not None:
            found[field] = value
        elif future is not None:
            waiting[field] = future
        else:
            missing.append(field)
    TERM_FREQUENCIES.labels(source="memory").inc(len(found))
    if missing:
        keys = [memo_key(corpus, counting, field) for field in missing]
        memo.claim(keys)
        try:
            values = await _look_up(cache, corpus, counting, missing, count)
        except BaseException:
            memo.settle(keys, None)
            raise
        memo.settle(keys, [values[field] for field in missing])
        found.update(values)
    retry: list[str] = []
    for field, future in waiting.items():
        try:
            # Shielded: cancelling this request must not cancel another request's count.
            found[field] = await asyncio.shield(future)
        except Abandoned:
            retry.append(field)
    if retry:
        values = await _look_up(cache, corpus, counting, retry, count)
        for field, value in values.items():
            memo.put(memo_key(corpus, counting, field), value)
        found.update(values)
    return found


async def _look_up(
    cache: Cache | None, corpus: Corpus, counting: Counting, fields: list[str], count: Counter
) -> dict[str, int]:
    """Values from Redis, and those Redis lacks (or all, when it is down) from `count`."""
    found: dict[str, int] = {}
    missing = fields
    key = frequency_key(cache, corpus, counting) if cache is not None else ""
    if cache is not None:
        stored = await cache.get_fields(key, fields)
        if stored is not None:
            missing = []
            for field, raw in zip(fields, stored, strict=True):
                if raw is not None and raw.isdigit():
                    found[field] = int(raw)
                else:
                    missing.append(field)
            TERM_FREQUENCIES.labels(source="redis").inc(len(found))
    if not missing:
        return found
    counted = await count(missing)
    TERM_FREQUENCIES.labels(source="database").inc(len(counted))
    found.update(counted)
    if cache is not None:
        values = {field: str(value).encode() for field, value in counted.items()}
        await cache.set_fields(key, values, ttl=FREQUENCY_TTL_SECONDS)
    return found
