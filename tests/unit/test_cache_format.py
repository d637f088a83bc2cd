"""The cache envelope: compressed answers, float16 vectors, legacy values, the TTL rule, and
the one-line warning about an external Redis's memory settings."""

from __future__ import annotations

import os

import numpy as np

from lorebase.cache import MAX_TTL_SECONDS, _ttl, decode_value, encode_value
from lorebase.memory import redis_budget_warning


def test_large_values_are_compressed_and_round_trip() -> None:
    value = b'{"results":[' + b'{"chunk_text":"the same words again and again"},' * 100 + b"]}"
    stored = encode_value(value, now=1_000)
    assert len(stored) < len(value) / 3
    codec, payload, written = decode_value(stored)
    assert (codec, payload, written) == (0, value, 1_000)


def test_small_or_incompressible_values_are_stored_as_they_are() -> None:
    for value in (b'{"results":[]}', os.urandom(4096)):
        stored = encode_value(value)
        assert len(stored) == len(value) + 8
        assert decode_value(stored)[1] == value


def test_values_from_before_the_envelope_read_as_themselves() -> None:
    legacy = np.arange(4, dtype=np.float32).tobytes()
    assert decode_value(legacy) == (0, legacy, None)
    assert decode_value(b'{"results":[]}')[1] == b'{"results":[]}'


def test_a_cache_entry_always_expires() -> None:
    assert _ttl(None) == MAX_TTL_SECONDS
    assert _ttl(0) == MAX_TTL_SECONDS
    assert _ttl(3600) == 3600


def test_budget_warning_names_the_unsafe_settings() -> None:
    assert redis_budget_warning(256 << 20, "volatile-lru") is None
    assert redis_budget_warning(256 << 20, "volatile-ttl") is None
    unbounded = redis_budget_warning(0, "noeviction")
    assert unbounded is not None
    assert "no maxmemory" in unbounded
    allkeys = redis_budget_warning(256 << 20, "allkeys-lru")
    assert allkeys is not None
    assert "rate-limit" in allkeys
    full = redis_budget_warning(256 << 20, "noeviction")
    assert full is not None
    assert "\n" not in full
