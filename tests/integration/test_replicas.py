"""Searches on streaming read replicas (`DATABASE_REPLICA_URLS`), never staler than the caller's
own writes: a real hot standby made with pg_basebackup from the session's PostgreSQL."""

from __future__ import annotations

import dataclasses
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY

from lorebase.context import AppContext
from lorebase.db import Database, SearchRoute
from lorebase.main import create_app
from lorebase.projects.service import bump_corpus_generation
from tests.factories import create_project, register_user
from tests.ingestion import drain, upload
from tests.pgcluster import TcpPostgres

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def standby(
    pg_server: TcpPostgres, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TcpPostgres]:
    replica = pg_server.replica(tmp_path_factory.mktemp("replica"))
    yield replica
    replica.remove()


@pytest.fixture
async def db(database_url: str, standby: TcpPostgres) -> AsyncIterator[Database]:
    replica_url = database_url.replace(f":{_port(database_url)}/", f":{standby.port}/")
    database = Database(database_url, min_size=1, max_size=2, replica_conninfos=[replica_url])
    await database.open()
    yield database
    await database.close()


def _port(url: str) -> int:
    return int(url.split("@127.0.0.1:")[1].split("/")[0])


async def _answered_by_replica(
    db: Database, project_id: uuid.UUID, generation: int, route: SearchRoute | None = None
) -> bool:
    async with db.search_connection(
        project_id=project_id, generation=generation, route=route
    ) as conn:
        row = await (await conn.execute("SELECT pg_is_in_recovery() AS standby")).fetchone()
    assert row is not None
    return bool(row["standby"])


async def _project(client: httpx.AsyncClient) -> uuid.UUID:
    user = await register_user(client)
    return uuid.UUID((await create_project(client, user.headers))["id"])


async def test_search_reads_from_a_replica_that_has_caught_up(
    client: httpx.AsyncClient, db: Database, pg_server: TcpPostgres, standby: TcpPostgres
) -> None:
    project_id = await _project(client)
    async with db.transaction() as conn:
        generation = await bump_corpus_generation(conn, project_id=project_id)
    pg_server.wait_replayed(standby)
    assert await _answered_by_replica(db, project_id, generation)


async def test_one_search_checks_the_replica_once(
    client: httpx.AsyncClient, db: Database, pg_server: TcpPostgres, standby: TcpPostgres
) -> None:
    project_id = await _project(client)
    async with db.transaction() as conn:
        generation = await bump_corpus_generation(conn, project_id=project_id)
    pg_server.wait_replayed(standby)
    route = SearchRoute()
    assert await _answered_by_replica(db, project_id, generation, route)
    assert route == SearchRoute(chosen=True, replica=0)
    # The search's next connection goes where the first one went, unchecked: a generation no
    # server has (which a check would send to the primary) still reads from the replica.
    assert await _answered_by_replica(db, project_id, generation + 1000, route)
    # A search that found no fresh replica keeps reading from the primary.
    stale = SearchRoute()
    assert not await _answered_by_replica(db, project_id, generation + 1000, stale)
    assert stale == SearchRoute(chosen=True, replica=None)
    assert not await _answered_by_replica(db, project_id, generation, stale)


async def test_a_lagging_replica_is_skipped_for_the_callers_fresh_write(
    client: httpx.AsyncClient, db: Database, standby: TcpPostgres
) -> None:
    project_id = await _project(client)
    with psycopg.connect(standby.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        # The write lands on the primary; the paused standby cannot have it.
        async with db.transaction() as conn:
            generation = await bump_corpus_generation(conn, project_id=project_id)
        assert not await _answered_by_replica(db, project_id, generation)
    finally:
        with psycopg.connect(standby.url(), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")


async def test_a_replica_that_is_down_falls_back_to_the_primary(
    client: httpx.AsyncClient, database_url: str
) -> None:
    project_id = await _project(client)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    dead = database_url.replace(f":{_port(database_url)}/", f":{closed}/")
    database = Database(database_url, min_size=1, max_size=2, replica_conninfos=[dead])
    await database.open()  # a replica that is down does not stop the start
    try:
        assert not await _answered_by_replica(database, project_id, 0)
        # A replica chosen earlier in a search that fails now: the rest reads the primary.
        route = SearchRoute(chosen=True, replica=0)
        assert not await _answered_by_replica(database, project_id, 0, route)
        assert route.replica is None
    finally:
        await database.close()


async def test_a_search_right_after_ingestion_finds_it_while_the_replica_lags(
    ctx: AppContext,
    client: httpx.AsyncClient,
    db: Database,
    pg_server: TcpPostgres,
    standby: TcpPostgres,
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    replica_ctx = dataclasses.replace(ctx, db=db)
    app = create_app(context=replica_ctx)
    body = {"project_id": project["id"], "query_text": "what colour is the heron's beak?"}
    with psycopg.connect(standby.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        accepted = await upload(
            client,
            user.headers,
            project["id"],
            ("birds.md", b"# Birds\n\nThe heron has a yellow beak.\n"),
        )
        assert accepted.status_code == 202, accepted.text
        await drain(ctx)
        before = _reads("primary")
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                fresh = await http.post("/api/v1/rag/query", json=body, headers=user.headers)
        assert fresh.status_code == 200, fresh.text
        assert "yellow beak" in fresh.json()["results"][0]["chunk_text"], "read its own write"
        assert _reads("primary") > before, "the lagging replica was skipped"
    finally:
        with psycopg.connect(standby.url(), autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
    pg_server.wait_replayed(standby)
    before = _reads("replica")
    app = create_app(context=replica_ctx)  # an app's lifespan runs once
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            again = await http.post(
                "/api/v1/rag/query",
                json={**body, "query_text": "heron beak colour"},
                headers=user.headers,
            )
    assert "yellow beak" in again.json()["results"][0]["chunk_text"]
    assert _reads("replica") > before, "a caught-up replica answers"


def _reads(target: str) -> float:
    value = REGISTRY.get_sample_value("lorebase_search_reads_total", {"target": target})
    return value or 0.0
