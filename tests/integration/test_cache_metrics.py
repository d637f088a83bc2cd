"""What /metrics says about memory: cache hits and misses per kind, the age of each hit, bytes
before and after encoding, in-process cache sizes and the PostgreSQL pool; and the one-line
warning `serve` prints for an external Redis without a safe budget."""

from __future__ import annotations

import re
import socket
import uuid

import httpx
import numpy as np

from lorebase.cache import Cache
from lorebase.context import AppContext, open_context
from lorebase.memory import check_redis_budget
from tests.conftest import TEST_REDIS_URL


def _value(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)\{([^}]*)\} (\S+)$", line)
        if match and match.group(1) == name:
            have = ",".join(sorted(match.group(2).split(",")))
            if have == wanted:
                return float(match.group(3))
    return 0.0


async def test_cache_kinds_are_counted_with_the_age_of_each_hit(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    before = (await client.get("/metrics")).text
    key = ctx.cache.key("answer", "metrics-test", uuid.uuid4().hex)
    assert await ctx.cache.get_bytes(key) is None
    value = b'{"results":[' + b'{"chunk_text":"words repeated"},' * 50 + b"]}"
    await ctx.cache.set_bytes(key, value, ttl=60)
    assert await ctx.cache.get_bytes(key) == value
    assert 0 < await ctx.cache.redis.ttl(key) <= 60
    vector_key = ctx.cache.key("qemb", "metrics-test", uuid.uuid4().hex)
    vector = np.linspace(-1, 1, 384, dtype=np.float32)
    stored = await ctx.cache.set_vector(vector_key, vector, ttl=60)
    read = await ctx.cache.get_vector(vector_key, dimension=384)
    assert read is not None
    assert np.array_equal(read, stored)
    assert np.allclose(read, vector, atol=1e-3)
    after = (await client.get("/metrics")).text
    counts = "lorebase_cache_requests_total"
    assert _value(after, counts, kind="answer", result="miss") >= (
        _value(before, counts, kind="answer", result="miss") + 1
    )
    assert _value(after, counts, kind="answer", result="hit") >= (
        _value(before, counts, kind="answer", result="hit") + 1
    )
    ages = "lorebase_cache_hit_age_seconds_count"
    assert _value(after, ages, kind="qemb") >= _value(before, ages, kind="qemb") + 1
    written = "lorebase_cache_written_bytes_total"
    grew = _value(after, written, kind="answer", form="value") - _value(
        before, written, kind="answer", form="value"
    )
    stored_bytes = _value(after, written, kind="answer", form="stored") - _value(
        before, written, kind="answer", form="stored"
    )
    assert grew >= len(value)
    assert stored_bytes < grew / 3


async def test_process_caches_and_pool_are_in_metrics(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    # /metrics shows the process's latest context: open one here, since other tests of this
    # process may have opened (and closed) theirs after the session's.
    async with open_context(ctx.settings) as own:
        text = (await client.get("/metrics")).text
        assert _value(text, "lorebase_process_cache_max_entries", cache="tokens") == 10_000
        assert _value(text, "lorebase_process_cache_max_entries", cache="frequencies") == 20_000
        assert "lorebase_process_cache_entries{" in text
        pool_max = own.settings.database_pool_max
        assert _value(text, "lorebase_database_connections", state="max") == pool_max
        # Backends are recycled (their catalog and plan caches only grow while they live) and a
        # burst's extra connections close when idle.
        assert own.db.pool.max_lifetime == own.settings.database_pool_max_lifetime_seconds
        assert own.db.pool.max_idle == own.settings.database_pool_max_idle_seconds
    assert _value(text, "lorebase_database_connections", state="size") >= 1


async def test_the_settings_choose_each_kinds_ttl(ctx: AppContext) -> None:
    assert ctx.cache.ttls == {
        "qemb": ctx.settings.query_embedding_ttl_seconds,
        "df": ctx.settings.frequency_cache_ttl_seconds,
    }
    cache = Cache(TEST_REDIS_URL, prefix=f"ttl-{uuid.uuid4().hex}:", ttls={"qemb": 120, "df": 90})
    try:
        vector = cache.key("qemb", "m", "t")
        await cache.set_vector(vector, np.ones(4, dtype=np.float32), ttl=7 * 86400)
        assert 110 < await cache.redis.ttl(vector) <= 120, "the kind's TTL, not the writer's"
        counts = cache.key("df", "1", "2")
        await cache.set_fields(counts, {"word": b"3"}, ttl=86400)
        assert 80 < await cache.redis.ttl(counts) <= 90
        answer = cache.key("answer", "x")
        await cache.set_bytes(answer, b"{}", ttl=60)
        assert 50 < await cache.redis.ttl(answer) <= 60, "a kind without a setting keeps its own"
    finally:
        await cache.redis.delete(cache.key("qemb", "m", "t"), cache.key("df", "1", "2"))
        await cache.redis.delete(cache.key("answer", "x"))
        await cache.close()


def test_an_unbounded_external_redis_gets_a_one_line_warning() -> None:
    # The test Redis runs with Redis's defaults: no maxmemory, noeviction.
    warning = check_redis_budget(TEST_REDIS_URL)
    assert warning is not None
    assert "maxmemory" in warning
    assert "\n" not in warning
    assert check_redis_budget("redis://127.0.0.1:1/0") is not None


async def test_bytes_and_vector_come_back_in_one_round_trip_or_say_redis_did_not_answer(
    ctx: AppContext,
) -> None:
    answer_key = ctx.cache.key("answer", "pair-test", uuid.uuid4().hex)
    vector_key = ctx.cache.key("qemb", "pair-test", uuid.uuid4().hex)
    assert await ctx.cache.get_bytes_and_vector(answer_key, vector_key, dimension=8) == (
        None,
        None,
        True,  # Redis answered: both are known to be missing
    )
    await ctx.cache.set_bytes(answer_key, b'{"results":[]}', ttl=60)
    stored = await ctx.cache.set_vector(vector_key, np.linspace(0, 1, 8, dtype=np.float32))
    value, vector, answered = await ctx.cache.get_bytes_and_vector(
        answer_key, vector_key, dimension=8
    )
    assert (value, answered) == (b'{"results":[]}', True)
    assert vector is not None
    assert np.array_equal(vector, stored)
    # A vector of another dimension is a miss, as get_vector says.
    assert (await ctx.cache.get_bytes_and_vector(answer_key, vector_key, dimension=4))[1] is None

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = Cache(f"redis://127.0.0.1:{port}/0", prefix="dead:")
    try:
        assert await dead.get_bytes_and_vector("a", "b", dimension=8) == (None, None, False)
    finally:
        await dead.close()
