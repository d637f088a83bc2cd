"""The lexical leg on real PostgreSQL and Redis: document frequencies cached per corpus
generation (and counted when Redis is down), the candidate budget, and web-search syntax and
filters while the budget prunes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import REGISTRY

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.cache import Cache
from lorebase.context import AppContext
from lorebase.projects.service import get_project_for
from lorebase.retrieval.frequency import (
    Corpus,
    Counting,
    FrequencyMemo,
    frequency_key,
    memo_key,
    term_stats,
)
from lorebase.retrieval.schemas import QueryFilters
from lorebase.retrieval.search import SearchTarget, search, target_of
from tests.retrieval_seed import make_owner, seed_document

SKY = (
    "The observatory logbook records the night sky, the telescope alignment, the weather, "
    "the dome temperature and every calibration frame taken before dawn. "
)

# 19 chunks: "quasar" is rare (3), "widget" (10) and "gadget" (11) are common.
CORPUS = {
    "quasar-notes": [f"Entry {i}: a quasar was seen. " + SKY * 6 for i in range(3)],
    "gadget-sheet": ["gadget gadget gadget"],
    "widget-catalogue": [f"Widget {i} ships with gadget parts and spare bolts." for i in range(10)],
    "garden": [f"Bed {i} holds tomatoes, beans and marigolds." for i in range(5)],
}
BUDGET_BELOW_CORPUS = 4


@dataclass
class Seeded:
    principal: Principal
    project_id: uuid.UUID
    docs: dict[str, uuid.UUID]

    async def target(self, ctx: AppContext) -> SearchTarget:
        project = await get_project_for(
            ctx.db, principal=self.principal, project_id=self.project_id, permission=Permission.READ
        )
        return target_of(project)


async def _seed(ctx: AppContext, corpus: dict[str, list[str]]) -> Seeded:
    principal, project_id = await make_owner(ctx)
    docs: dict[str, uuid.UUID] = {}
    for name, chunks in corpus.items():
        doc = await seed_document(
            ctx, project_id=project_id, name=name, chunks=chunks, tags=[name.split("-")[0]]
        )
        docs[name] = doc.id
    return Seeded(principal, project_id, docs)


@pytest.fixture(scope="module")
async def seeded(ctx: AppContext) -> Seeded:
    return await _seed(ctx, CORPUS)


@contextmanager
def budget(ctx: AppContext, value: int, **overrides: Any) -> Iterator[None]:
    original = ctx.settings
    ctx.settings = original.model_copy(update={"fulltext_candidate_budget": value, **overrides})
    try:
        yield
    finally:
        ctx.settings = original


def _names(results: list[Any]) -> list[str]:
    return [r.document_name for r in results]


def _counted(source: str) -> float:
    value = REGISTRY.get_sample_value(
        "lorebase_fulltext_term_frequencies_total", {"source": source}
    )
    return value or 0.0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_budget_ranks_only_the_rare_lexemes_chunks(ctx: AppContext, seeded: Seeded) -> None:
    target = await seeded.target(ctx)
    query = "quasar gadget"
    # (idf x ts_rank: with BM25's saturation the rare quasar wins even unpruned)
    with budget(ctx, 1000, fulltext_rank="idf"):  # corpus within the budget: nothing pruned
        whole = await search(ctx, target=target, query_text=query, mode="fulltext", top_k=3)
    # The short all-gadget chunk outscores a long chunk that mentions the quasar once...
    assert _names(whole.results)[0] == "gadget-sheet", _names(whole.results)
    with budget(ctx, BUDGET_BELOW_CORPUS, fulltext_rank="idf"):
        pruned = await search(ctx, target=target, query_text=query, mode="fulltext", top_k=3)
    # ...but only the rare lexeme's chunks are ranked once the budget is below the corpus.
    assert _names(pruned.results) == ["quasar-notes"] * 3


async def test_a_budget_covering_the_corpus_changes_nothing(
    ctx: AppContext, seeded: Seeded
) -> None:
    target = await seeded.target(ctx)
    chunks = sum(len(chunks) for chunks in CORPUS.values())
    for query in ("quasar gadget", "widget gadget bolts", "tomatoes and a quasar"):
        with budget(ctx, chunks):
            exact = await search(ctx, target=target, query_text=query, mode="fulltext", top_k=10)
        with budget(ctx, 10**9):
            unbounded = await search(
                ctx, target=target, query_text=query, mode="fulltext", top_k=10
            )
        assert [r.id for r in exact.results] == [r.id for r in unbounded.results], query


async def test_common_words_alone_still_find_their_chunks(ctx: AppContext, seeded: Seeded) -> None:
    target = await seeded.target(ctx)
    with budget(ctx, BUDGET_BELOW_CORPUS):
        both = await search(
            ctx, target=target, query_text="widget gadget", mode="fulltext", top_k=3
        )
        one = await search(ctx, target=target, query_text="gadget", mode="fulltext", top_k=3)
    # Chunks holding both common words come first; one common word finds its chunks too.
    assert _names(both.results) == ["widget-catalogue"] * 3
    assert len(one.results) == 3
    assert set(_names(one.results)) <= {"gadget-sheet", "widget-catalogue"}


async def test_later_tiers_fill_the_leg_when_the_rare_lexemes_chunks_are_too_few(
    ctx: AppContext, seeded: Seeded
) -> None:
    target = await seeded.target(ctx)
    # idf, as above: under BM25 the long quasar chunks may rank below short gadget ones once
    # the tiers are merged, which is BM25's length normalisation, not the fill under test.
    with budget(ctx, BUDGET_BELOW_CORPUS, fulltext_rank="idf"):
        hits = await search(
            ctx, target=target, query_text="quasar gadget", mode="fulltext", top_k=6
        )
    names = _names(hits.results)
    assert len(names) == 6
    assert names.count("quasar-notes") == 3, names


async def test_filters_apply_while_the_budget_prunes(ctx: AppContext, seeded: Seeded) -> None:
    target = await seeded.target(ctx)
    with budget(ctx, BUDGET_BELOW_CORPUS):
        # No quasar chunk passes the filter: the gadget tier finds the one that does.
        by_doc = await search(
            ctx,
            target=target,
            query_text="quasar gadget",
            mode="fulltext",
            top_k=3,
            filters=QueryFilters(document_ids=[seeded.docs["gadget-sheet"]]),
        )
        by_tag = await search(
            ctx,
            target=target,
            query_text="quasar gadget",
            mode="fulltext",
            top_k=20,
            filters=QueryFilters(tags=["widget"]),
        )
    assert _names(by_doc.results) == ["gadget-sheet"]
    assert by_tag.results
    assert set(_names(by_tag.results)) == {"widget-catalogue"}


async def test_websearch_syntax_ranks_its_matches_first_while_the_budget_prunes(
    ctx: AppContext, seeded: Seeded
) -> None:
    target = await seeded.target(ctx)
    with budget(ctx, BUDGET_BELOW_CORPUS):
        phrase = await search(
            ctx, target=target, query_text='"spare bolts" -widget', mode="fulltext", top_k=20
        )
        both = await search(
            ctx, target=target, query_text='"spare bolts" gadget', mode="fulltext", top_k=20
        )
        excluded = await search(
            ctx, target=target, query_text="quasar -observatory", mode="fulltext", top_k=20
        )
    with budget(ctx, 1000):
        whole = await search(
            ctx, target=target, query_text='"spare bolts" gadget', mode="fulltext", top_k=20
        )
    # A negation keeps the query exact: every chunk with the phrase also has "widget".
    assert phrase.results == []
    # The 10 chunks with the phrase and "gadget"; the pruned fill (chunks with all, then the
    # two rarest of the common words "spare", "bolts", "gadget") holds no other chunk...
    assert _names(both.results) == ["widget-catalogue"] * 10
    # ...and unpruned, the chunk with "gadget" alone follows them.
    assert _names(whole.results) == ["widget-catalogue"] * 10 + ["gadget-sheet"]
    assert excluded.results == []  # every quasar chunk also has "observatory"


async def test_frequencies_are_cached_and_a_knowledge_change_recounts_them(
    ctx: AppContext,
) -> None:
    filler = "The harbour office keeps ledgers of cargo, tides and crew rosters for the season."
    seeded = await _seed(
        ctx, {"zebra": [f"zebra zebra. {filler}"], "yak": [f"yak. {filler}"], "other": [filler]}
    )
    target = await seeded.target(ctx)
    model = target.embedding_model
    assert model is not None
    query = "zebra yak"
    first = await search(ctx, target=target, query_text=query, mode="fulltext", top_k=2)
    assert _names(first.results) == ["zebra", "yak"]
    key = frequency_key(
        ctx.cache, Corpus(seeded.project_id, model, target.corpus_generation), Counting()
    )
    stored = await ctx.cache.redis.hgetall(key)
    assert int(stored.pop(b"  ")) > 0  # the chunks' lexemes, summed (BM25's average length)
    assert stored == {b"": b"3", b" ": b"3", b"zebra": b"1", b"yak": b"1"}
    assert await ctx.cache.redis.ttl(key) > 0

    # A count planted in Redis (and no longer in this process's memory) is what ranks: as
    # common as the corpus, "zebra" weighs almost nothing.
    await ctx.cache.redis.hset(key, "zebra", "3")
    ctx.frequency_memo.clear()
    from_redis = _counted("redis")
    planted = await search(ctx, target=target, query_text=query, mode="fulltext", top_k=2)
    assert _counted("redis") - from_redis == 5  # chunks, sample, lengths, two lexemes
    assert _names(planted.results)[0] == "yak"

    # New knowledge bumps the corpus generation: the planted count is never read again.
    await seed_document(ctx, project_id=seeded.project_id, name="more", chunks=[filler])
    fresh = await seeded.target(ctx)
    assert fresh.corpus_generation > target.corpus_generation
    counted = _counted("database")
    after = await search(ctx, target=fresh, query_text=query, mode="fulltext", top_k=2)
    assert _counted("database") - counted == 5
    assert _names(after.results) == ["zebra", "yak"]
    new_key = frequency_key(
        ctx.cache, Corpus(seeded.project_id, model, fresh.corpus_generation), Counting()
    )
    stored = await ctx.cache.redis.hgetall(new_key)
    assert int(stored.pop(b"  ")) > 0
    assert stored == {b"": b"4", b" ": b"4", b"zebra": b"1", b"yak": b"1"}


async def test_redis_down_degrades_to_counting(
    ctx: AppContext, seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    target = await seeded.target(ctx)
    query = "quasar gadget widget"
    healthy = await search(ctx, target=target, query_text=query, mode="hybrid", top_k=5)
    dead = Cache(f"redis://127.0.0.1:{_closed_port()}/0", prefix="dead:")
    try:
        outage = dataclasses.replace(
            ctx, cache=dead, rerankers={}, query_batchers={}, frequency_memo=FrequencyMemo()
        )
        counted = _counted("database")
        # create_app() may have reconfigured logging; listen on the cache's own logger.
        cache_log = logging.getLogger("lorebase.cache")
        cache_log.addHandler(caplog.handler)
        try:
            with caplog.at_level(logging.WARNING, logger="lorebase.cache"):
                degraded = await search(
                    outage, target=target, query_text=query, mode="hybrid", top_k=5
                )
        finally:
            cache_log.removeHandler(caplog.handler)
    finally:
        await dead.close()
    assert _counted("database") - counted == 6  # chunks, sample, lengths, three lexemes
    assert "cache read failed" in caplog.text
    assert [r.id for r in degraded.results] == [r.id for r in healthy.results]


async def test_concurrent_misses_count_each_lexeme_once(ctx: AppContext, seeded: Seeded) -> None:
    target = await seeded.target(ctx)
    assert target.embedding_model is not None
    corpus = Corpus(seeded.project_id, target.embedding_model, target.corpus_generation)
    lexemes = ["quasar", "gadget", "widget"]
    memo = FrequencyMemo()

    async def stats() -> dict[str, int]:
        async with ctx.db.connection() as conn:
            found = await term_stats(conn, cache=None, memo=memo, corpus=corpus, lexemes=lexemes)
        return found.frequencies

    counted = _counted("database")
    results = await asyncio.gather(*(stats() for _ in range(4)))
    assert _counted("database") - counted == 6  # chunks, sample, lengths, lexemes: once
    assert results == [{"quasar": 3, "gadget": 11, "widget": 10}] * 4

    # A request cancelled while counting leaves its waiters to count for themselves.
    memo = FrequencyMemo()
    async with ctx.db.connection() as conn:  # the chunk count is known; the lexemes are not
        await term_stats(conn, cache=None, memo=memo, corpus=corpus, lexemes=[])
    quasar = memo_key(corpus, Counting(), "quasar")
    async with ctx.db.connection() as first, ctx.db.connection() as second:
        owner = asyncio.create_task(
            term_stats(first, cache=None, memo=memo, corpus=corpus, lexemes=lexemes)
        )
        await asyncio.sleep(0)
        assert memo.pending(quasar) is not None  # the owner is counting
        waiter = asyncio.create_task(
            term_stats(second, cache=None, memo=memo, corpus=corpus, lexemes=lexemes)
        )
        await asyncio.sleep(0)
        owner.cancel()
        assert (await waiter).frequencies == {"quasar": 3, "gadget": 11, "widget": 10}
        with pytest.raises(asyncio.CancelledError):
            await owner
    assert memo.pending(quasar) is None
    assert memo.get(quasar) == 3


async def test_a_large_project_estimates_common_lexemes_from_a_sample(ctx: AppContext) -> None:
    """Estimated from the sample when it holds `min_hits`, else counted exactly."""
    chunks = []
    for i in range(40):
        words = ["lantern"]
        if i < 10 or 20 <= i < 30:
            words.append("harbour")  # 20 chunks, all ten of the sample's among them
        if i in (1, 30):
            words.append("beacon")  # 2 chunks, one in the sample
        chunks.append(" ".join(words) + f" entry {i}.")
    seeded = await _seed(ctx, {"log": chunks})
    counting = Counting(sample_size=10, min_hits=5)
    async with ctx.db.transaction() as conn:
        # Ids spread evenly over the UUID space: chunks 0-9 are the sample (ids below 1/4).
        for i in range(40):
            await conn.execute(
                "UPDATE knowledge_items SET id = %s WHERE document_id = %s AND chunk_index = %s",
                (uuid.UUID(int=i * 2**128 // 40 + 1), seeded.docs["log"], i),
            )
    target = await seeded.target(ctx)
    assert target.embedding_model is not None
    corpus = Corpus(seeded.project_id, target.embedding_model, target.corpus_generation)
    async with ctx.db.connection() as conn:
        stats = await term_stats(
            conn,
            cache=None,
            memo=FrequencyMemo(),
            corpus=corpus,
            lexemes=["harbour", "beacon", "lantern"],
            counting=counting,
        )
    assert stats.total == 40
    assert stats.frequencies["beacon"] == 2  # 1 of 10 sampled: counted
    assert stats.frequencies["harbour"] == 40  # 10 of 10 sampled: estimated, not counted
    assert stats.frequencies["lantern"] == 40
    assert 0 < stats.idf("harbour") == stats.idf("lantern") < 0.05
    async with ctx.db.connection() as conn:
        exact = await term_stats(
            conn,
            cache=None,
            memo=FrequencyMemo(),
            corpus=corpus,
            lexemes=["harbour", "beacon", "lantern"],
            counting=Counting(sample_size=10, min_hits=11),
        )
    assert exact.frequencies == {"harbour": 20, "beacon": 2, "lantern": 40}


# What the analysis of migration 0005 finds that PostgreSQL's `english` configuration missed.
ANALYSIS = {
    "yaml-howto": ["Edit config.yaml to change the port the server listens on."],
    "port-notes": ["The port of the server is set in its settings file."],
    "setopt-call": ["Call curl_easy_setopt before the transfer starts."],
    "setopt-prose": ["The easy interface of curl reads each setopt before the transfer."],
    "log-out": ["To log out of the console, close every tab."],
    "log-off": ["To log off the console, open a tab."],
}


async def _english_matches(ctx: AppContext, text: str, query: str) -> bool:
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT to_tsvector('english', %s) @@ plainto_tsquery('english', %s) AS hit",
            (text, query),
        )
        row = await cur.fetchone()
    return bool(row and row["hit"])


async def test_the_analysis_matches_words_the_english_configuration_joined_or_dropped(
    ctx: AppContext,
) -> None:
    seeded = await _seed(ctx, ANALYSIS)
    target = await seeded.target(ctx)

    async def top(query: str) -> list[str]:
        found = await search(ctx, target=target, query_text=query, mode="fulltext", top_k=5)
        return _names(found.results)

    # `english` indexed "config.yaml" as one lexeme (a host name): "yaml" never matched it.
    assert not await _english_matches(ctx, ANALYSIS["yaml-howto"][0], "yaml")
    assert await top("yaml") == ["yaml-howto"]
    # An identifier is one lexeme as well as its words: it ranks the chunk that names it first.
    assert (await top("curl_easy_setopt"))[:2] == ["setopt-call", "setopt-prose"]
    # "out" and "off" were stop words, so "log out" and "log off" matched both chunks alike.
    assert await _english_matches(ctx, ANALYSIS["log-off"][0], "log out")
    assert (await top("How do I log out?"))[0] == "log-out"
    assert (await top("log off"))[0] == "log-off"


async def test_a_simple_project_keeps_every_word_of_the_query(ctx: AppContext) -> None:
    principal, project_id = await make_owner(ctx)
    async with ctx.db.transaction() as conn:
        await conn.execute(
            "UPDATE projects SET text_search_config = 'simple' WHERE id = %s", (project_id,)
        )
    await seed_document(
        ctx, project_id=project_id, name="guard", chunks=["if not found: raise KeyError(name)"]
    )
    await seed_document(ctx, project_id=project_id, name="other", chunks=["return the name"])
    seeded = Seeded(principal, project_id, {})
    found = await search(
        ctx, target=await seeded.target(ctx), query_text="if not", mode="fulltext", top_k=5
    )
    # Under `english` both words are query stop words; code searches for them.
    assert _names(found.results) == ["guard"]
