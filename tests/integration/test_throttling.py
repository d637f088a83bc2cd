"""Throttling that holds (issue 14, finding 5): password spraying, registration and refresh
loops, key minting and keys multiplying a user's budget, and auth limits while Redis is down."""

from __future__ import annotations

import uuid

from lorebase.cache import Cache
from lorebase.context import AppContext
from tests.factories import DEFAULT_PASSWORD, register_user
from tests.integration.test_rate_limit import _client, _closed_port


async def test_spraying_one_password_over_many_usernames_is_limited_per_ip(
    ctx: AppContext,
) -> None:
    # Per hour: no token refills while eight logins run, however loaded the machine.
    async with _client(ctx, rate_limit_auth_ip="5/hour") as client:
        codes = [
            (
                await client.post(
                    "/api/v1/auth/token",
                    data={"username": f"spray_{uuid.uuid4().hex[:8]}", "password": "Summer2026!"},
                )
            ).status_code
            for _ in range(8)
        ]
    assert codes == [401] * 5 + [429] * 3


async def test_registration_loop_is_limited_per_ip(ctx: AppContext) -> None:
    async with _client(ctx, rate_limit_register="3/hour") as client:
        codes = [
            (
                await client.post(
                    "/api/v1/auth/register",
                    json={"username": f"loop_{uuid.uuid4().hex[:8]}", "password": DEFAULT_PASSWORD},
                )
            ).status_code
            for _ in range(5)
        ]
    assert codes == [201, 201, 201, 429, 429]


async def test_refresh_loop_is_limited_per_ip(ctx: AppContext) -> None:
    async with _client(ctx, rate_limit_refresh="2/minute") as client:
        user = await register_user(client)
        token = user.refresh_token
        codes = []
        for _ in range(3):
            response = await client.post("/api/v1/auth/refresh", json={"refresh_token": token})
            codes.append(response.status_code)
            if response.status_code == 200:
                token = response.json()["refresh_token"]
    assert codes == [200, 200, 429]


async def test_key_minting_stops_at_the_cap(ctx: AppContext) -> None:
    async with _client(ctx, max_api_keys_per_user=3) as client:
        user = await register_user(client)
        minted = [
            await client.post(
                "/api/v1/api-keys", json={"name": f"k{i}", "scopes": ["read"]}, headers=user.headers
            )
            for i in range(5)
        ]
        assert [m.status_code for m in minted] == [201, 201, 201, 409, 409]
        assert "MAX_API_KEYS_PER_USER" in minted[3].json()["detail"]
        revoked = await client.delete(
            f"/api/v1/api-keys/{minted[0].json()['id']}", headers=user.headers
        )
        assert revoked.status_code == 204
        again = await client.post(
            "/api/v1/api-keys", json={"name": "again", "scopes": ["read"]}, headers=user.headers
        )
        assert again.status_code == 201


async def test_keys_spend_their_owners_budget(ctx: AppContext) -> None:
    async with _client(ctx, rate_limit_query="3/minute") as client:
        user = await register_user(client)
        keys = []
        for i in range(3):
            minted = await client.post(
                "/api/v1/api-keys", json={"name": f"k{i}", "scopes": ["read"]}, headers=user.headers
            )
            keys.append({"X-API-Key": minted.json()["key"]})
        codes = [(await client.post("/probe/query", headers=key)).status_code for key in keys]
        codes.append((await client.post("/probe/query", headers=keys[0])).status_code)
    assert codes == [200, 200, 200, 429], "three keys share one owner's 3/minute"


async def test_auth_limits_hold_in_process_while_redis_is_down(ctx: AppContext) -> None:
    dead = Cache(f"redis://127.0.0.1:{_closed_port()}/0", prefix=f"dead-{uuid.uuid4().hex}:")
    try:
        async with _client(ctx, cache=dead, rate_limit_auth_ip="3/minute") as client:
            codes = [
                (
                    await client.post(
                        "/api/v1/auth/token",
                        data={"username": f"down_{i}", "password": "wrong password"},
                    )
                ).status_code
                for i in range(5)
            ]
            user_headers_free = await client.post("/probe/query")
    finally:
        await dead.close()
    assert codes == [401, 401, 401, 429, 429]
    assert user_headers_free.status_code == 401, "other routes still answer"
