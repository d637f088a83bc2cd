"""Token-bucket rate limits in Redis, one atomic Lua script per hit.

Each bucket holds up to `limit` tokens and refills continuously at `limit / period` tokens per
second, so `60/minute` allows a burst of 60 and then one request a second. The script reads the
clock from Redis (`TIME`), so every API process shares one notion of time. When Redis cannot be
reached the limiter fails open (an outage of the cache must not take the API down with it),
except for buckets hit with `fallback=True` (the anonymous auth routes): those fall back to a
token bucket in this process, so a Redis outage does not open the door to password spraying.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from redis.exceptions import RedisError

from lorebase.cache import Cache, text_key
from lorebase.errors import RateLimited
from lorebase.settings import Settings, parse_rate

log = logging.getLogger(__name__)

# KEYS[1] bucket, KEYS[2] the index of buckets by when they are full again; ARGV: capacity,
# refill rate (tokens/s), cost.
# Returns {allowed (0|1), tokens left, seconds until `cost` tokens are available} as strings,
# because Redis truncates Lua numbers to integers in replies.
_BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
-- No TTL on a bucket: the cache's maxmemory policy (volatile-lru) evicts only keys with one.
-- A bucket is full again, as good as absent, at `full_at`; KEYS[2] indexes buckets by that
-- time and each hit deletes up to 8 that are past it, so idle buckets do not pile up.
redis.call('ZADD', KEYS[2], now + (capacity - tokens) / rate, KEYS[1])
local idle = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, 8)
if #idle > 0 then
  redis.call('DEL', unpack(idle))
  redis.call('ZREM', KEYS[2], unpack(idle))
end
return {allowed, tostring(tokens), tostring(wait)}
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one hit: allowed or not, tokens left, seconds to wait if refused."""

    allowed: bool
    remaining: float
    retry_after: float

    @property
    def retry_after_seconds(self) -> int:
        """`Retry-After` is whole seconds; round up so a client that obeys it succeeds."""
        return max(1, math.ceil(self.retry_after))


class LocalBuckets:
    """In-process token buckets: the same arithmetic as the Lua script, per process."""

    MAX_BUCKETS = 10_000  # least recently used buckets are forgotten beyond this

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def hit(self, key: str, *, capacity: int, rate: float, cost: int) -> Decision:
        now = time.monotonic()
        tokens, ts = self._buckets.pop(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + max(0.0, now - ts) * rate)
        allowed = tokens >= cost
        wait = 0.0 if allowed else (cost - tokens) / rate
        if allowed:
            tokens -= cost
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.MAX_BUCKETS:
            self._buckets.popitem(last=False)
        return Decision(allowed=allowed, remaining=tokens, retry_after=wait)


# The fallback's state lives as long as the process, like the buckets it stands in for.
_FALLBACK = LocalBuckets()


class RateLimiter:
    """Token buckets keyed by `(name, who)` in the one Redis client of `cache`."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._script = cache.redis.register_script(_BUCKET_SCRIPT)

    def bucket_key(self, *, name: str, who: str) -> str:
        """The Redis hash holding the bucket (fields `tokens`, `ts`)."""
        return self.cache.key("ratelimit", name, text_key(who))

    async def hit(
        self, *, name: str, who: str, rate: str, cost: int = 1, fallback: bool = False
    ) -> Decision:
        """Take `cost` tokens from the bucket `name` of `who` under `rate` (`60/minute`);
        with `fallback`, an in-process bucket decides while Redis is unreachable."""
        limit, period = parse_rate(rate)
        if limit <= 0:
            return Decision(allowed=False, remaining=0.0, retry_after=float(period))
        key = self.bucket_key(name=name, who=who)
        try:
            raw = await self._script(
                keys=[key, self.cache.key("ratelimit")], args=[limit, limit / period, cost]
            )
        except (RedisError, OSError) as exc:
            log.warning(
                "rate limiter unavailable; "
                + ("limiting in this process" if fallback else "allowing the request"),
                extra={"bucket": name, "error": type(exc).__name__},
            )
            if fallback:
                return _FALLBACK.hit(key, capacity=limit, rate=limit / period, cost=cost)
            return Decision(allowed=True, remaining=float(limit), retry_after=0.0)
        allowed, remaining, wait = raw
        return Decision(
            allowed=int(allowed) == 1, remaining=float(remaining), retry_after=float(wait)
        )

    async def enforce(
        self, *, name: str, who: str, rate: str, cost: int = 1, fallback: bool = False
    ) -> Decision:
        """`hit`, raising RateLimited (429 with Retry-After) when the bucket is empty."""
        decision = await self.hit(name=name, who=who, rate=rate, cost=cost, fallback=fallback)
        if not decision.allowed:
            raise RateLimited(
                f"rate limit {rate} exceeded for {name}; retry in "
                f"{decision.retry_after_seconds} s",
                retry_after=decision.retry_after_seconds,
            )
        return decision


Bucket = Literal["query", "ingest", "auth"]


async def enforce_limit(cache: Cache, settings: Settings, *, bucket: Bucket, who: str) -> Decision:
    """`rate_limit_<bucket>` for `who`; REST routes and MCP tools share these buckets."""
    rate = {
        "query": settings.rate_limit_query,
        "ingest": settings.rate_limit_ingest,
        "auth": settings.rate_limit_auth,
    }[bucket]
    return await RateLimiter(cache).enforce(name=bucket, who=who, rate=rate)
