"""Argon2 password hashing (pwdlib); verification runs off the event loop."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher


def password_hasher() -> PasswordHash:
    """Argon2id at pwdlib's defaults: 3 passes over 64 MiB in 4 lanes."""
    return PasswordHash((Argon2Hasher(),))


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return password_hasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    # Verified against when the user does not exist, so login takes the same time either way.
    return _hasher().hash("lorebase-timing-equaliser")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher().hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    """Constant-work check: a missing user still costs one Argon2 verification."""
    target = password_hash or _dummy_hash()
    ok = await asyncio.to_thread(_hasher().verify, password, target)
    return ok and password_hash is not None
