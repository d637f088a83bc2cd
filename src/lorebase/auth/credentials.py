"""Reading the credential a request's headers carry, the same for REST and MCP."""

from __future__ import annotations

from collections.abc import Mapping

from lorebase.auth.api_keys import API_KEY_PREFIX
from lorebase.errors import Unauthorized


def header_credential(headers: Mapping[str, str]) -> str | None:
    """The bearer token (`Authorization: Bearer ...`) or API key (`X-API-Key`) in `headers`
    (lower-case names); None when there is neither; 401 when either is malformed. X-API-Key
    carries API keys only, never a JWT (whose expiry and revocation rules differ)."""
    header = headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    key = headers.get("x-api-key")
    if key is None:
        return None
    if not key.strip().startswith(API_KEY_PREFIX):
        raise Unauthorized("X-API-Key must hold an API key (lb_...)")
    return key.strip()
