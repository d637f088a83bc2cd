"""Issue 18 / 14: the embedded Redis runs within a memory budget that evicts cache entries only
(a rate limit still answers 429 after the cache overflowed it), idle rate-limit buckets clean
themselves up, and a killed embedded Redis is restarted within seconds (/health back to ok)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from lorebase.cache import Cache
from lorebase.context import AppContext
from lorebase.embedded import REDIS_POLICY, EmbeddedRedis
from lorebase.main import create_app
from lorebase.ratelimit import RateLimiter
from tests.conftest import TEST_REDIS_URL


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """An embedded Redis (as `serve` starts it) with a 4 MB budget, watched."""
    server = EmbeddedRedis(tmp_path / "redis", max_memory="4mb")
    server.start()
    server.watch(interval=0.2)
    yield server
    server.stop()


@asynccontextmanager
async def _client(
    ctx: AppContext, cache: Cache, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ctx.settings.model_copy(update=overrides)
    app = create_app(context=dataclasses.replace(ctx, settings=settings, cache=cache))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def _info(cache: Cache, section: str) -> dict[str, Any]:
    info: dict[str, Any] = await cache.redis.info(section)
    return info


async def test_a_full_cache_evicts_entries_but_never_a_rate_limit(
    ctx: AppContext, small_redis: EmbeddedRedis
) -> None:
    cache = Cache(f"unix://{small_redis.socket}", prefix="budget:")
    try:
        config = await cache.redis.config_get("maxmemory*")
        assert int(config["maxmemory"]) == 4 << 20
        assert config["maxmemory-policy"] == REDIS_POLICY
        # Per hour: a slow fill (a loaded machine) must not refill the bucket meanwhile.
        async with _client(ctx, cache, rate_limit_auth="2/hour") as client:
            form = {"username": f"budget_{uuid.uuid4().hex[:8]}"}
            codes = [(await client.post("/api/v1/auth/token", data=form)).status_code for _ in "ab"]
            assert codes == [422, 422]
            # 24 MB of incompressible answers through a 4 MB budget.
            for i in range(3000):
                await cache.set_bytes(cache.key("answer", str(i)), os.urandom(8192), ttl=3600)
            memory = await _info(cache, "memory")
            stats = await _info(cache, "stats")
            assert stats["evicted_keys"] > 2000
            assert memory["used_memory"] <= memory["maxmemory"] * 1.05
            buckets = [k async for k in cache.redis.scan_iter(match="budget:ratelimit:*")]
            assert buckets, "the rate-limit bucket was evicted"
            assert (await client.post("/api/v1/auth/token", data=form)).status_code == 429
    finally:
        await cache.close()


async def test_idle_buckets_carry_no_ttl_and_clean_themselves_up() -> None:
    # A prefix of its own: a hit sweeps at most 8 idle buckets, oldest first, and the other
    # tests' buckets under a shared prefix can be older than this one's.
    cache = Cache(TEST_REDIS_URL, prefix=f"idle-{uuid.uuid4().hex}:")
    limiter = RateLimiter(cache)
    try:
        first, second = f"idle-{uuid.uuid4().hex}", f"idle-{uuid.uuid4().hex}"
        assert (await limiter.hit(name="t", who=first, rate="1000/second")).allowed
        key = limiter.bucket_key(name="t", who=first)
        assert await cache.redis.ttl(key) == -1  # persistent: never a maxmemory victim
        await asyncio.sleep(0.05)  # the bucket is full again after 1 ms: as good as absent
        assert (await limiter.hit(name="t", who=second, rate="1000/second")).allowed
        assert not await cache.redis.exists(key)
        assert await cache.redis.zscore(cache.key("ratelimit"), key) is None
    finally:
        await cache.redis.delete(cache.key("ratelimit"), limiter.bucket_key(name="t", who=second))
        await cache.close()


async def test_a_killed_embedded_redis_is_restarted_and_health_recovers(
    ctx: AppContext, small_redis: EmbeddedRedis
) -> None:
    cache = Cache(f"unix://{small_redis.socket}", prefix="heal:")
    try:
        async with _client(ctx, cache) as client:
            assert (await client.get("/api/v1/health")).json()["status"] == "ok"
            assert small_redis.pid is not None
            os.kill(small_redis.pid, signal.SIGKILL)
            killed = time.monotonic()
            statuses = []
            while time.monotonic() - killed < 10:
                statuses.append((await client.get("/api/v1/health")).json()["status"])
                if statuses[-1] == "ok" and "degraded" in statuses:
                    break
                await asyncio.sleep(0.1)
            healed = time.monotonic() - killed
            assert statuses[0] == "degraded"
            assert statuses[-1] == "ok"
            assert healed < 5
        # The watchdog counts the restart once the new server answers: allow it that moment.
        for _ in range(50):
            if small_redis.restarts:
                break
            await asyncio.sleep(0.05)
        assert small_redis.restarts == 1
        config = await cache.redis.config_get("maxmemory")
        assert int(config["maxmemory"]) == 4 << 20
    finally:
        await cache.close()
