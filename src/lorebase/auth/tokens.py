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


def decode_token(token: str, *, secret: str, expected_type: TokenType) -> TokenClaims:
    """Verify signature, expiry and type; any failure is a 401 that reveals nothing."""
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
    return TokenClaims(
        sub=str(payload["sub"]),
        jti=str(payload["jti"]),
        type=expected_type,
        exp=int(payload["exp"]),
        iat=int(payload["iat"]),
        extra=extra,
    )
