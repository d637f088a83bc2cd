from __future__ import annotations

import dataclasses
import socket

import httpx

from lorebase.cache import Cache
from lorebase.context import AppContext
from lorebase.main import create_app


async def test_health_reports_database_and_cache(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok"
    assert body["cache"] == "ok"
    assert body["status"] == "ok"
    assert response.headers["x-request-id"]


async def test_incoming_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/health")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert 'route="/api/v1/health"' in response.text


async def test_readiness_is_ok_when_database_and_redis_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_readiness_is_503_while_redis_is_down(ctx: AppContext) -> None:
    # A cache on a port where nothing listens: the node is alive (liveness 200) but not ready.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = Cache(f"redis://127.0.0.1:{port}/0", prefix="ready-test:")
    app = create_app(context=dataclasses.replace(ctx, cache=down))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                live = await http.get("/api/v1/health")
                ready = await http.get("/api/v1/health/ready")
    finally:
        await down.close()
    assert live.status_code == 200
    assert live.json()["cache"] == "down"
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"
