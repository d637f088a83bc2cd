"""Long-lived memory, watched (issue 18): the Redis budget check and the gauges of what each
process keeps (in-process LRUs, PostgreSQL connections) served by `GET /metrics`.

Redis: the cache only ever writes keys with a TTL and the rate limiter only keys without one,
so `volatile-*` policies evict cache entries only. `allkeys-*` would evict rate-limit buckets
(an evicted bucket is a full one: the limit opens) and `noeviction` makes every write fail once
full, the rate limiter's included (it then fails open).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

if TYPE_CHECKING:
    from lorebase.context import AppContext

SAFE_POLICIES = frozenset({"volatile-lru", "volatile-lfu", "volatile-ttl", "volatile-random"})


def redis_budget_warning(maxmemory: int, policy: str) -> str | None:
    """One line when an external Redis's memory settings do not bound the cache safely."""
    if maxmemory <= 0:
        return "redis has no maxmemory: the caches grow without bound; set maxmemory (e.g. 256mb)"
    if policy not in SAFE_POLICIES:
        hint = (
            "would evict rate-limit buckets (limits open)"
            if policy.startswith("allkeys")
            else "fails every write when full, rate limits included"
        )
        return (
            f"redis maxmemory-policy is {policy}, which {hint}; "
            "use volatile-lru (only cache entries carry a TTL)"
        )
    return None


def check_redis_budget(url: str) -> str | None:
    """Read `maxmemory`/`maxmemory-policy` of the Redis at `url`; a warning line or None."""
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        config: dict[Any, Any] = {}
        for name in ("maxmemory", "maxmemory-policy"):
            config.update(client.config_get(name))
    except (RedisError, OSError) as exc:
        return f"could not read redis maxmemory settings ({type(exc).__name__}); check them by hand"
    finally:
        client.close()
    values = {_text(k): _text(v) for k, v in config.items()}
    try:
        maxmemory = int(values.get("maxmemory", "0"))
    except ValueError:
        maxmemory = 0
    return redis_budget_warning(maxmemory, values.get("maxmemory-policy", "noeviction"))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ProcessCaches(Collector):
    """Sizes of this process's in-process caches and its PostgreSQL pool, read at scrape time
    from the live AppContext (one per process; held weakly)."""

    def __init__(self) -> None:
        self._ctx: weakref.ReferenceType[AppContext] | None = None

    def watch(self, ctx: AppContext) -> None:
        self._ctx = weakref.ref(ctx)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ctx = self._ctx() if self._ctx is not None else None
        if ctx is None:
            return
        entries = GaugeMetricFamily(
            "lorebase_process_cache_entries",
            "Entries in this process's in-process caches, by cache.",
            labels=["cache"],
        )
        limits = GaugeMetricFamily(
            "lorebase_process_cache_max_entries",
            "Configured bound of each in-process cache (settings).",
            labels=["cache"],
        )
        entries.add_metric(["tokens"], len(ctx.tokens))
        limits.add_metric(["tokens"], ctx.tokens.max_entries)
        entries.add_metric(["frequencies"], len(ctx.frequency_memo))
        limits.add_metric(["frequencies"], ctx.settings.frequency_memo_entries)
        yield entries
        yield limits
        stats = ctx.db.pool.get_stats()
        pool = GaugeMetricFamily(
            "lorebase_database_connections",
            "This process's PostgreSQL pool: open connections (size) and its bound (max).",
            labels=["state"],
        )
        pool.add_metric(["size"], stats.get("pool_size", 0))
        pool.add_metric(["available"], stats.get("pool_available", 0))
        pool.add_metric(["max"], stats.get("pool_max", ctx.db.pool.max_size))
        yield pool


_COLLECTOR: ProcessCaches | None = None


def watch_process_caches(ctx: AppContext) -> None:
    """Serve `ctx`'s cache and pool sizes in /metrics (registered once per process)."""
    global _COLLECTOR
    if _COLLECTOR is None:
        _COLLECTOR = ProcessCaches()
        REGISTRY.register(_COLLECTOR)
    _COLLECTOR.watch(ctx)
