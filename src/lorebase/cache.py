"""The one Redis client (redis.asyncio) for caches, rate limits and locks."""

from __future__ import annotations

import hashlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def text_key(*parts: str) -> str:
    """A short stable key from free text (queries, chunk texts)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:40]


class Cache:
    """Byte values in Redis under a prefix. Cache reads and writes never fail a request:
    a Redis outage degrades to misses and is visible in /health."""

    def __init__(self, url: str, *, prefix: str = "lorebase:") -> None:
        self.redis: Redis = Redis.from_url(
            url, socket_connect_timeout=1.0, socket_timeout=1.0, health_check_interval=30
        )
        self.prefix = prefix

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def close(self) -> None:
        await self.redis.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def get_bytes(self, key: str) -> bytes | None:
        try:
            raw = await self.redis.get(key)
        except (RedisError, OSError) as exc:
            log.warning("cache read failed", extra={"error": type(exc).__name__})
            return None
        if raw is None:
            return None
        return raw.encode() if isinstance(raw, str) else bytes(raw)

    async def set_bytes(self, key: str, value: bytes, *, ttl: int | None = None) -> None:
        try:
            await self.redis.set(key, value, ex=ttl or None)
        except (RedisError, OSError) as exc:
            log.warning("cache write failed", extra={"error": type(exc).__name__})

    async def get_fields(self, key: str, fields: list[str]) -> list[bytes | None] | None:
        """The hash's values for `fields` (None for a missing field); None if Redis failed."""
        try:
            raw = await self.redis.hmget(key, fields)
        except (RedisError, OSError) as exc:
            log.warning("cache read failed", extra={"error": type(exc).__name__})
            return None
        return [None if value is None else _as_bytes(value) for value in raw]

    async def set_fields(self, key: str, values: dict[str, bytes], *, ttl: int) -> None:
        """Set fields of a hash and (re)start its expiry."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, mapping=values)  # type: ignore[arg-type]
                pipe.expire(key, ttl)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("cache write failed", extra={"error": type(exc).__name__})


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
