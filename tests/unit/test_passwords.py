"""The production Argon2id parameters (the suite hashes at a lower cost: tests/conftest.py)."""

from __future__ import annotations

from lorebase.auth import passwords


def test_production_hashes_use_argon2id_at_64_mib_three_passes_four_lanes() -> None:
    hasher = passwords.password_hasher()
    hashed = hasher.hash("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), hashed
    assert hasher.verify("correct horse battery staple", hashed)
    assert not hasher.verify("wrong horse", hashed)


async def test_the_suite_hashes_cheaply_and_still_verifies() -> None:
    hashed = await passwords.hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$"), hashed
    assert await passwords.verify_password("correct horse battery staple", hashed)
    assert not await passwords.verify_password("wrong horse", hashed)
    assert not await passwords.verify_password("anything", None), "a missing user never passes"
