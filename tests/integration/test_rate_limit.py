from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from lorebase.api.deps import IngestRateLimit, QueryRateLimit
from lorebase.cache import Cache
from lorebase.context import AppContext
from lorebase.errors import RateLimited
from lorebase.main import create_app
from lorebase.ratelimit import RateLimiter
from tests.factories import create_project, register_user


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def _client(ctx: AppContext, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app over its own context copy: other settings and/or another cache."""
    cache = overrides.pop("cache", ctx.cache)
    settings = ctx.settings.model_copy(update=overrides)
    app = create_app(context=dataclasses.replace(ctx, settings=settings, cache=cache))
    _add_probe_routes(app)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def _add_probe_routes(app: FastAPI) -> None:
    # Stand-ins for /rag/query and the ingestion routes, wired exactly as those routes are.
    @app.post("/probe/query")
    async def probe_query(_limit: QueryRateLimit) -> dict[str, bool]:
        return {"ok": True}

    @app.post("/probe/ingest")
    async def probe_ingest(_limit: IngestRateLimit) -> dict[str, bool]:
        return {"ok": True}


async def _rewind(ctx: AppContext, key: str, seconds: float) -> None:
    """Age a bucket's last update, as if `seconds` had passed (no sleeping, no flakiness)."""
    ts = float(await ctx.cache.redis.hget(key, "ts"))
    await ctx.cache.redis.hset(key, "ts", str(ts - seconds))


async def test_bucket_allows_the_limit_then_refuses_then_refills(ctx: AppContext) -> None:
    limiter = RateLimiter(ctx.cache)
    who = f"refill-{uuid.uuid4().hex}"
    decisions = [await limiter.hit(name="t", who=who, rate="3/minute") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    refused = decisions[-1]
    assert 0 < refused.retry_after <= 20  # one token every 20 s
    assert 1 <= refused.retry_after_seconds <= 20
    await _rewind(ctx, limiter.bucket_key(name="t", who=who), 20)
    assert (await limiter.hit(name="t", who=who, rate="3/minute")).allowed
    assert not (await limiter.hit(name="t", who=who, rate="3/minute")).allowed
    # Refill never exceeds the capacity, however long the bucket sat idle.
    await _rewind(ctx, limiter.bucket_key(name="t", who=who), 3600)
    again = [await limiter.hit(name="t", who=who, rate="3/minute") for _ in range(4)]
    assert [d.allowed for d in again] == [True, True, True, False]


async def test_bucket_refills_in_real_time(ctx: AppContext) -> None:
    limiter = RateLimiter(ctx.cache)
    who = f"clock-{uuid.uuid4().hex}"
    assert (await limiter.hit(name="t", who=who, rate="1/second")).allowed
    assert not (await limiter.hit(name="t", who=who, rate="1/second")).allowed
    await asyncio.sleep(1.1)  # the script reads Redis' own clock
    assert (await limiter.hit(name="t", who=who, rate="1/second")).allowed


async def test_buckets_are_separate_per_caller_and_name(ctx: AppContext) -> None:
    limiter = RateLimiter(ctx.cache)
    assert (await limiter.hit(name="a", who="alice", rate="1/minute")).allowed
    assert not (await limiter.hit(name="a", who="alice", rate="1/minute")).allowed
    assert (await limiter.hit(name="a", who="bob", rate="1/minute")).allowed
    assert (await limiter.hit(name="b", who="alice", rate="1/minute")).allowed


async def test_enforce_raises_with_retry_after(ctx: AppContext) -> None:
    limiter = RateLimiter(ctx.cache)
    await limiter.enforce(name="e", who="x", rate="2/minute")
    await limiter.enforce(name="e", who="x", rate="2/minute")
    with pytest.raises(RateLimited) as caught:
        await limiter.enforce(name="e", who="x", rate="2/minute")
    assert caught.value.status == 429
    # 2/minute refills one token every 30 s.
    assert 15 <= int(caught.value.headers["Retry-After"]) <= 30


async def test_redis_down_fails_open_with_a_warning(
    ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    dead = Cache(f"redis://127.0.0.1:{_closed_port()}/0", prefix="dead:")
    try:
        limiter = RateLimiter(dead)
        with caplog.at_level(logging.WARNING, logger="lorebase.ratelimit"):
            decisions = [await limiter.hit(name="x", who="y", rate="1/minute") for _ in range(3)]
        assert all(d.allowed for d in decisions)
        assert "rate limiter unavailable" in caplog.text
    finally:
        await dead.close()


async def test_auth_token_is_limited_per_ip_and_username(ctx: AppContext) -> None:
    async with _client(ctx, rate_limit_auth="3/minute") as client:
        user = await register_user(client)  # logs in once: one token spent
        form = {"username": user.username, "password": "wrong password"}
        statuses = [(await client.post("/api/v1/auth/token", data=form)).status_code]
        statuses.append((await client.post("/api/v1/auth/token", data=form)).status_code)
        assert statuses == [401, 401]
        limited = await client.post(
            "/api/v1/auth/token", data={"username": user.username, "password": user.password}
        )
        assert limited.status_code == 429  # even the right password: the bucket is empty
        assert limited.headers["content-type"] == "application/problem+json"
        # One token per 20 s; some of that may already have passed on a loaded machine.
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        body = limited.json()
        assert body["status"] == 429
        assert body["request_id"] == limited.headers["x-request-id"]
        # Case does not open a new bucket; another username does.
        upper = {"username": user.username.upper(), "password": "wrong password"}
        assert (await client.post("/api/v1/auth/token", data=upper)).status_code == 429
        other = {"username": "someone_else", "password": "wrong password"}
        assert (await client.post("/api/v1/auth/token", data=other)).status_code == 401


async def test_buckets_refill_over_http(ctx: AppContext) -> None:
    async with _client(ctx, rate_limit_auth="2/minute", rate_limit_query="2/minute") as client:
        user = await register_user(client)
        # A form without a password is refused (422) before any Argon2 work; it still spends
        # a token, so guessing cannot dodge the limit with malformed requests.
        form = {"username": f"refill_{uuid.uuid4().hex[:8]}"}
        codes = [(await client.post("/api/v1/auth/token", data=form)).status_code for _ in range(3)]
        assert codes == [422, 422, 429]
        codes = [
            (await client.post("/probe/query", headers=user.headers)).status_code for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        bucket = RateLimiter(ctx.cache).bucket_key(name="query", who=f"user:{user.id}")
        await _rewind(ctx, bucket, 30)  # one token's worth at 2/minute
        assert (await client.post("/probe/query", headers=user.headers)).status_code == 200
        assert (await client.post("/probe/query", headers=user.headers)).status_code == 429


async def test_query_and_ingest_limits_are_per_user_and_per_key(ctx: AppContext) -> None:
    async with _client(ctx, rate_limit_query="2/minute", rate_limit_ingest="1/minute") as client:
        alice = await register_user(client)
        bob = await register_user(client)
        minted = await client.post(
            "/api/v1/api-keys", json={"name": "k", "scopes": ["read"]}, headers=alice.headers
        )
        key = {"X-API-Key": minted.json()["key"]}
        codes = [
            (await client.post("/probe/query", headers=alice.headers)).status_code for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        assert (await client.post("/probe/query", headers=bob.headers)).status_code == 200
        # A key has its own bucket but spends its owner's too: alice's is empty.
        assert (await client.post("/probe/query", headers=key)).status_code == 429
        # Separate bucket for ingestion, with its own limit.
        assert (await client.post("/probe/ingest", headers=alice.headers)).status_code == 200
        refused = await client.post("/probe/ingest", headers=alice.headers)
        assert refused.status_code == 429
        assert 30 <= int(refused.headers["retry-after"]) <= 60
        # Anonymous callers are refused before any bucket is touched.
        assert (await client.post("/probe/query")).status_code == 401


async def test_api_stays_up_when_redis_is_down(
    ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    dead = Cache(f"redis://127.0.0.1:{_closed_port()}/0", prefix="dead:")
    try:
        async with _client(ctx, cache=dead, rate_limit_auth="1/minute") as client:
            form = {"username": "nobody_down", "password": "wrong password"}
            # create_app() reconfigured the root logger; listen on the limiter's own logger.
            limiter_log = logging.getLogger("lorebase.ratelimit")
            limiter_log.addHandler(caplog.handler)
            try:
                codes = [
                    (await client.post("/api/v1/auth/token", data=form)).status_code
                    for _ in range(3)
                ]
            finally:
                limiter_log.removeHandler(caplog.handler)
            # The API answers; the auth bucket (1/minute) holds in-process while Redis is down.
            assert codes == [401, 429, 429]
            assert "rate limiter unavailable; limiting in this process" in caplog.text
    finally:
        await dead.close()


async def test_real_routes_carry_the_limits(ctx: AppContext) -> None:
    async with _client(ctx, rate_limit_query="1/minute", rate_limit_ingest="2/minute") as client:
        user = await register_user(client)
        project = await create_project(client, user.headers)
        query = {"project_id": project["id"], "query_text": "anything"}
        first = await client.post("/api/v1/rag/query", json=query, headers=user.headers)
        assert first.status_code == 200, first.text
        second = await client.post("/api/v1/rag/query", json=query, headers=user.headers)
        assert second.status_code == 429
        assert second.headers["retry-after"]

        # One ingest bucket across /documents, versions and /knowledge/*.
        document = await client.post(
            "/api/v1/documents",
            json={"project_id": project["id"], "name": "a.md", "content": "# A\n\nalpha"},
            headers=user.headers,
        )
        assert document.status_code == 201, document.text
        version = await client.post(
            f"/api/v1/documents/{document.json()['id']}/version",
            json={"content": "# A\n\nbeta"},
            headers=user.headers,
        )
        assert version.status_code == 201, version.text
        text = await client.post(
            "/api/v1/knowledge/text",
            json={"project_id": project["id"], "name": "b.md", "text": "gamma"},
            headers=user.headers,
        )
        assert text.status_code == 429
        upload = await client.post(
            "/api/v1/knowledge/upload",
            data={"project_id": project["id"]},
            files={"file": ("c.md", b"# C\n\ndelta")},
            headers=user.headers,
        )
        assert upload.status_code == 429
        # Reads are not limited.
        listed = await client.get(
            "/api/v1/documents", params={"project_id": project["id"]}, headers=user.headers
        )
        assert listed.status_code == 200
