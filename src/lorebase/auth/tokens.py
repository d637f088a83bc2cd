"""JWT access and refresh tokens (PyJWT, HS256) with exp, iat, sub, jti and a type claim."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from lorebase.errors import Unauthorized

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]


@dataclass(frozen=True, slots=True)
class TokenClaims:
    sub: str
    jti: str
    type: TokenType
    exp: int
    iat: int
    extra: dict[str, Any]


def encode_token(
    *,
    secret: str,
    subject: str,
    token_type: TokenType,
    ttl_seconds: int,
    jti: str | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[str, TokenClaims]:
    now = int(time.time())
    claims = TokenClaims(
        sub=subject,
        jti=jti or uuid.uuid4().hex,
        type=token_type,
        exp=now + ttl_seconds,
        iat=now,
        extra=extra or {},
    )
    payload = {
        **claims.extra,
        "sub": claims.sub,
        "jti": claims.jti,
        "typ": claims.type,
        "iat": claims.iat,
        "exp": claims.exp,
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def decode_token(
    token: str, *, secret: str, expected_type: TokenType, cache: TokenCache | None = None
) -> TokenClaims:
    """Verify signature, expiry and type; any failure is a 401 that reveals nothing.

    With `cache`, a token whose signature was verified before is not verified again; its
    expiry is checked on every use."""
    if cache is not None:
        cached = cache.get(token, expected_type)
        if cached is not None:
            return cached
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "iat", "sub", "jti", "typ"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid token") from None
    if payload.get("typ") != expected_type:
        raise Unauthorized("invalid token type")
    extra = {k: v for k, v in payload.items() if k not in {"sub", "jti", "typ", "iat", "exp"}}
    claims = TokenClaims(
        sub=str(payload["sub"]),
        jti=str(payload["jti"]),
        type=expected_type,
        exp=int(payload["exp"]),
        iat=int(payload["iat"]),
        extra=extra,
    )
    if cache is not None:
        cache.put(token, claims)
    return claims


class TokenCache:
    """Claims of access tokens whose signature this process has verified, by token string.

    PyJWT re-prepares the key and re-checks the signature on every `decode` (~80 us, a tenth of
    an authenticated read, bench/RESULTS.md). A token string can only ever carry the claims it
    was verified with, so a hit needs no new signature check; expiry is checked on every hit,
    and a full cache drops its oldest entry. One cache per signing secret (per AppContext)."""

    def __init__(self, *, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._claims: dict[str, TokenClaims] = {}

    def __len__(self) -> int:
        return len(self._claims)

    def get(self, token: str, expected_type: TokenType) -> TokenClaims | None:
        claims = self._claims.get(token)
        if claims is None or claims.type != expected_type:
            return None
        # PyJWT rejects a token at `exp` itself (now >= exp), and so does the cache.
        if time.time() >= claims.exp:
            del self._claims[token]
            raise Unauthorized("token expired")
        return claims

    def put(self, token: str, claims: TokenClaims) -> None:
        if len(self._claims) >= self.max_entries:
            self._claims.pop(next(iter(self._claims)))
        self._claims[token] = claims
