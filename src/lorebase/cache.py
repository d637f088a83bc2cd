"""The one Redis client (redis.asyncio) for caches, rate limits and locks.

Memory rule (issue 18): every cache entry carries a TTL, and nothing else does. The embedded
Redis runs with `maxmemory` and the `volatile-lru` policy, which only ever evicts keys that have
a TTL, so a full cache drops cache entries and never a rate-limit bucket (those are persistent
and clean themselves up, see lorebase.ratelimit).

Values written with `set_bytes` are stored in an envelope: a 3-byte marker, a codec byte and the
write time (uint32 seconds). Large values are zlib-compressed (an answer's JSON shrinks ~3x);
`set_vector` stores float32 vectors as float16 (half the bytes; a cache entry is re-creatable).
The write time gives `lorebase_cache_hit_age_seconds`, the measurement that justifies a TTL:
the share of hits older than a candidate TTL is what that TTL would lose.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import numpy as np
from prometheus_client import Counter, Histogram
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

# A cache entry never lives longer than this (a TTL of 0/None means this, never "forever").
MAX_TTL_SECONDS = 7 * 86400

_MAGIC = b"\xfeLB"
_HEADER = struct.Struct("<3sBI")  # marker, codec, written at (unix seconds)
_RAW, _ZLIB, _FLOAT16 = 0, 1, 2
# Below this a value is stored as it is: zlib's own header would eat most of the gain.
_COMPRESS_FROM = 256

CACHE_REQUESTS = Counter(
    "lorebase_cache_requests_total",
    "Redis cache lookups by kind of entry (answer, qemb, df, ...) and result (hit or miss).",
    ["kind", "result"],
)
CACHE_HIT_AGE = Histogram(
    "lorebase_cache_hit_age_seconds",
    "Age of the entry each cache hit returned, by kind: the hits a shorter TTL would lose.",
    ["kind"],
    buckets=(10, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 86400, 2 * 86400, 7 * 86400),
)
CACHE_BYTES = Counter(
    "lorebase_cache_written_bytes_total",
    "Bytes handed to the cache (form=value) and stored after encoding (form=stored), by kind.",
    ["kind", "form"],
)

# Reconnect backoff: after a connection failure, Redis is not tried again for this long
# (doubling up to the cap), so an unreachable server costs one failed connect per period
# instead of one per request.
_BACKOFF_START = 0.1
_BACKOFF_CAP = 5.0


def text_key(*parts: str) -> str:
    """A short stable key from free text (queries, chunk texts)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return digest[:40]


def encode_value(value: bytes, *, codec: int = _RAW, now: float | None = None) -> bytes:
    """`value` in the cache envelope, compressed when that pays."""
    if codec == _RAW and len(value) >= _COMPRESS_FROM:
        packed = zlib.compress(value, 1)
        if len(packed) < len(value):
            value, codec = packed, _ZLIB
    written = int(time.time() if now is None else now) & 0xFFFFFFFF
    return _HEADER.pack(_MAGIC, codec, written) + value


def decode_value(stored: bytes) -> tuple[int, bytes, int | None]:
    """(codec, payload, written-at) of a stored value; a value from before the envelope is
    (raw, itself, None). Raises ValueError on a corrupt envelope."""
    if len(stored) < _HEADER.size or not stored.startswith(_MAGIC):
        return _RAW, stored, None
    _, codec, written = _HEADER.unpack_from(stored)
    payload = stored[_HEADER.size :]
    if codec == _ZLIB:
        try:
            return _RAW, zlib.decompress(payload), written
        except zlib.error as exc:
            raise ValueError("corrupt cache entry") from exc
    if codec not in (_RAW, _FLOAT16):
        raise ValueError(f"unknown cache codec {codec}")
    return codec, payload, written


class Cache:
    """Byte values in Redis under a prefix. Cache reads and writes never fail a request:
    a Redis outage degrades to misses and is visible in /health."""

    def __init__(
        self, url: str, *, prefix: str = "lorebase:", ttls: Mapping[str, int] | None = None
    ) -> None:
        """`ttls`: seconds by kind of entry (settings), in place of what the writer asks."""
        self.redis: Redis = Redis.from_url(
            url, socket_connect_timeout=1.0, socket_timeout=1.0, health_check_interval=30
        )
        self.prefix = prefix
        self.ttls = dict(ttls or {})
        self._down_until = 0.0
        self._backoff = 0.0

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def kind(self, key: str) -> str:
        """The kind of a key (its first part after the prefix): the metrics' label."""
        return key[len(self.prefix) :].split(":", 1)[0] if key.startswith(self.prefix) else "other"

    async def close(self) -> None:
        await self.redis.aclose()

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: BaseException, what: str) -> None:
        log.warning(f"cache {what} failed", extra={"error": type(exc).__name__})
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
            self._backoff = min(_BACKOFF_CAP, max(_BACKOFF_START, self._backoff * 2))
            self._down_until = time.monotonic() + self._backoff

    def _succeeded(self) -> None:
        self._backoff = 0.0

    async def ping(self) -> bool:
        """Always asks Redis (so /health sees a recovery at once), and ends a backoff."""
        try:
            ok = bool(await self.redis.ping())
        except (RedisError, OSError):
            return False
        self._succeeded()
        self._down_until = 0.0
        return ok

    async def _read(self, read: Callable[[], Awaitable[list[Any]]]) -> list[bytes | None] | None:
        """A read of one or more values (GET, MGET, HMGET) as bytes each (None: missing); None
        when Redis is down or failed, counted like every other failure."""
        if not self._available():
            return None
        try:
            raw = await read()
        except (RedisError, OSError) as exc:
            self._failed(exc, "read")
            return None
        self._succeeded()
        return [None if value is None else _as_bytes(value) for value in raw]

    async def _get(self, key: str) -> bytes | None:
        async def get() -> list[Any]:
            return [await self.redis.get(key)]

        values = await self._read(get)
        return None if values is None else values[0]

    async def _set(self, key: str, value: bytes, *, stored: bytes, ttl: int | None) -> None:
        if not self._available():
            return
        kind = self.kind(key)
        CACHE_BYTES.labels(kind=kind, form="value").inc(len(value))
        CACHE_BYTES.labels(kind=kind, form="stored").inc(len(stored))
        try:
            await self.redis.set(key, stored, ex=_ttl(self.ttls.get(kind, ttl)))
        except (RedisError, OSError) as exc:
            self._failed(exc, "write")
            return
        self._succeeded()

    def _counted(self, key: str, written: int | None, *, hit: bool) -> None:
        kind = self.kind(key)
        CACHE_REQUESTS.labels(kind=kind, result="hit" if hit else "miss").inc()
        if hit and written is not None:
            CACHE_HIT_AGE.labels(kind=kind).observe(max(0.0, time.time() - written))

    async def get_bytes(self, key: str) -> bytes | None:
        return self._read_bytes(key, await self._get(key))

    def _read_bytes(self, key: str, stored: bytes | None) -> bytes | None:
        if stored is None:
            self._counted(key, None, hit=False)
            return None
        try:
            codec, payload, written = decode_value(stored)
        except ValueError:
            codec, payload, written = -1, b"", None
        if codec != _RAW:
            self._counted(key, None, hit=False)
            return None
        self._counted(key, written, hit=True)
        return payload

    async def set_bytes(self, key: str, value: bytes, *, ttl: int | None = None) -> None:
        """Store `value` (compressed if that pays) for `ttl` seconds (None/0: the longest
        cache TTL; a cache entry always expires, see the module docstring)."""
        await self._set(key, value, stored=encode_value(value), ttl=ttl)

    async def get_vector(self, key: str, *, dimension: int) -> np.ndarray[Any, Any] | None:
        """A vector stored by `set_vector` (or as raw float32 before it), as float32."""
        return self._read_vector(key, await self._get(key), dimension)

    def _read_vector(
        self, key: str, stored: bytes | None, dimension: int
    ) -> np.ndarray[Any, Any] | None:
        vector: np.ndarray[Any, Any] | None = None
        written: int | None = None
        if stored is not None:
            try:
                codec, payload, written = decode_value(stored)
            except ValueError:
                codec, payload = -1, b""
            if codec == _FLOAT16 and len(payload) == 2 * dimension:
                vector = np.frombuffer(payload, dtype=np.float16).astype(np.float32)
            elif codec == _RAW and len(payload) == 4 * dimension:
                vector = np.frombuffer(payload, dtype=np.float32).copy()
        self._counted(key, written, hit=vector is not None)
        return vector

    async def get_bytes_and_vector(
        self, bytes_key: str, vector_key: str, *, dimension: int
    ) -> tuple[bytes | None, np.ndarray[Any, Any] | None, bool]:
        """`get_bytes(bytes_key)` and `get_vector(vector_key)` in one round trip, and whether
        Redis answered (False: both are unknown, not missing)."""
        values = await self._read(lambda: self.redis.mget([bytes_key, vector_key]))
        if values is None:
            return None, None, False
        first, second = values
        value = self._read_bytes(bytes_key, first)
        return value, self._read_vector(vector_key, second, dimension), True

    async def set_vector(
        self, key: str, vector: np.ndarray[Any, Any], *, ttl: int | None = None
    ) -> np.ndarray[Any, Any]:
        """Store `vector` as float16; returns it as a later `get_vector` will (float32 of the
        float16 values), so a hit and a miss rank the same."""
        half = np.asarray(vector, dtype=np.float16)
        value = np.asarray(vector, dtype=np.float32).tobytes()
        stored = encode_value(half.tobytes(), codec=_FLOAT16)
        await self._set(key, value, stored=stored, ttl=ttl)
        return half.astype(np.float32)

    async def get_fields(self, key: str, fields: list[str]) -> list[bytes | None] | None:
        """The hash's values for `fields` (None for a missing field); None if Redis failed."""
        values = await self._read(lambda: self.redis.hmget(key, fields))
        if values is None:
            return None
        found = sum(value is not None for value in values)
        kind = self.kind(key)
        CACHE_REQUESTS.labels(kind=kind, result="hit").inc(found)
        CACHE_REQUESTS.labels(kind=kind, result="miss").inc(len(values) - found)
        return values

    async def set_fields(self, key: str, values: dict[str, bytes], *, ttl: int) -> None:
        """Set fields of a hash and (re)start its expiry."""
        if not self._available():
            return
        ttl = self.ttls.get(self.kind(key), ttl)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, mapping=values)  # type: ignore[arg-type]
                pipe.expire(key, _ttl(ttl))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self._failed(exc, "write")
            return
        self._succeeded()


def _ttl(ttl: int | None) -> int:
    return ttl if ttl and ttl > 0 else MAX_TTL_SECONDS


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()
