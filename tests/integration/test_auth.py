from __future__ import annotations

import logging
import time

import httpx
import jwt
import pytest

from tests.factories import DEFAULT_PASSWORD, register_user


async def test_register_login_me(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    me = await client.get("/api/v1/auth/me", headers=user.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["username"] == user.username
    assert body["is_admin"] is False
    assert set(body) == {"id", "username", "email", "is_admin", "created_at"}


async def test_register_duplicate_username_is_409(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    again = await client.post(
        "/api/v1/auth/register",
        json={"username": user.username.upper(), "password": "another password"},
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


async def test_register_rejects_short_password(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"username": "shorty", "password": "x"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "password"


async def test_wrong_password_is_401_problem(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    response = await client.post(
        "/api/v1/auth/token", data={"username": user.username, "password": "wrong password"}
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["detail"] == "incorrect username or password"


async def test_unknown_user_gets_the_same_answer(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/token", data={"username": "nobody_here", "password": "whatever1"}
    )
    assert response.status_code == 401
    assert response.json()["detail"] == "incorrect username or password"


async def test_login_time_does_not_reveal_whether_user_exists(client: httpx.AsyncClient) -> None:
    user = await register_user(client)

    async def timed(username: str) -> float:
        start = time.perf_counter()
        await client.post(
            "/api/v1/auth/token", data={"username": username, "password": "wrong password"}
        )
        return time.perf_counter() - start

    known = sorted([await timed(user.username) for _ in range(5)])[2]
    unknown = sorted([await timed("ghost_" + user.username) for _ in range(5)])[2]
    # Both paths run one Argon2 verification; without the dummy hash `unknown` is ~100x faster.
    assert unknown > known * 0.3, (known, unknown)


async def test_access_token_claims(client: httpx.AsyncClient, ctx: object) -> None:
    user = await register_user(client)
    token = user.headers["Authorization"].split()[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"exp", "iat", "sub", "jti", "typ"} <= set(claims)
    assert claims["typ"] == "access"
    assert claims["sub"] == user.id


async def test_refresh_token_cannot_be_used_as_access_token(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    response = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {user.refresh_token}"}
    )
    assert response.status_code == 401


async def test_refresh_rotates_and_reuse_revokes_family(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert first.status_code == 200
    new_refresh = first.json()["refresh_token"]
    assert new_refresh != user.refresh_token
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {first.json()['access_token']}"}
    )
    assert me.status_code == 200

    reuse = await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    assert reuse.status_code == 401
    # The reuse revoked the whole family: the newest token is dead too.
    after = await client.post("/api/v1/auth/refresh", json={"refresh_token": new_refresh})
    assert after.status_code == 401


async def test_tampered_and_garbage_tokens_are_401(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    token = user.headers["Authorization"].split()[1]
    for bad in (token[:-2] + "xx", "not-a-token", ""):
        response = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401, bad
    no_auth = await client.get("/api/v1/auth/me")
    assert no_auth.status_code == 401
    basic = await client.get("/api/v1/auth/me", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401


async def test_no_password_or_token_in_logs(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = await register_user(client)
    await client.post("/api/v1/auth/refresh", json={"refresh_token": user.refresh_token})
    text = caplog.text
    assert DEFAULT_PASSWORD not in text
    assert user.refresh_token not in text
    assert user.headers["Authorization"].split()[1] not in text
