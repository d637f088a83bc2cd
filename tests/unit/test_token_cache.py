"""The verified-token cache: hits skip PyJWT, but expiry, type and signature still hold."""

from __future__ import annotations

import time

import jwt
import pytest

from lorebase.auth.tokens import TokenCache, decode_token, encode_token
from lorebase.errors import Unauthorized

SECRET = "unit-test-secret-" + "x" * 32


def test_a_verified_token_is_served_from_the_cache() -> None:
    cache = TokenCache()
    token, _ = encode_token(secret=SECRET, subject="u1", token_type="access", ttl_seconds=60)
    first = decode_token(token, secret=SECRET, expected_type="access", cache=cache)
    second = decode_token(token, secret=SECRET, expected_type="access", cache=cache)
    assert second is first  # the same claims object: no second PyJWT decode
    assert len(cache) == 1


def test_an_expired_cached_token_is_refused() -> None:
    cache = TokenCache()
    token, _ = encode_token(secret=SECRET, subject="u1", token_type="access", ttl_seconds=1)
    decode_token(token, secret=SECRET, expected_type="access", cache=cache)
    time.sleep(1.1)
    with pytest.raises(Unauthorized, match="expired"):
        decode_token(token, secret=SECRET, expected_type="access", cache=cache)
    assert len(cache) == 0


def test_a_cached_access_token_is_not_accepted_as_another_type() -> None:
    cache = TokenCache()
    token, _ = encode_token(secret=SECRET, subject="u1", token_type="access", ttl_seconds=60)
    decode_token(token, secret=SECRET, expected_type="access", cache=cache)
    with pytest.raises(Unauthorized, match="type"):
        decode_token(token, secret=SECRET, expected_type="refresh", cache=cache)


def test_bad_tokens_are_never_cached() -> None:
    cache = TokenCache()
    forged = jwt.encode(
        {"sub": "u1", "jti": "j", "typ": "access", "iat": 0, "exp": int(time.time()) + 60},
        "another-secret-" + "y" * 32,
        algorithm="HS256",
    )
    for _ in range(2):
        with pytest.raises(Unauthorized, match="invalid token"):
            decode_token(forged, secret=SECRET, expected_type="access", cache=cache)
    assert len(cache) == 0


def test_the_cache_is_bounded() -> None:
    cache = TokenCache(max_entries=3)
    tokens = [
        encode_token(secret=SECRET, subject=f"u{i}", token_type="access", ttl_seconds=60)[0]
        for i in range(5)
    ]
    for token in tokens:
        decode_token(token, secret=SECRET, expected_type="access", cache=cache)
    assert len(cache) == 3
    # The oldest went first; the newest are hits.
    assert cache.get(tokens[0], "access") is None
    assert cache.get(tokens[-1], "access") is not None
