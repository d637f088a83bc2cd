"""The soak's reading of PostgreSQL's memory (`lorebase.bench.pgmemory`), on the session's
server: shared pool against its configured bound, private memory per client backend, prewarm."""

from __future__ import annotations

import uuid

import psycopg

from lorebase.bench.pgmemory import postgres_memory, prewarm, shared_memory_bound
from tests.pgcluster import TcpPostgres


def _pids(url: str) -> list[int]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity").fetchall()
    return [int(pid) for (pid,) in rows]


def test_postgres_memory_is_split_by_kind(pg_server: TcpPostgres) -> None:
    url = pg_server.url()
    bounds = shared_memory_bound(url)
    assert bounds["shared_buffers_mb"] > 0
    assert bounds["segment_mb"] >= bounds["shared_buffers_mb"], "the segment holds the pool"
    with psycopg.connect(url, autocommit=True) as held:  # a client backend that stays open
        held.execute("SELECT count(*) FROM pg_class").fetchone()
        memory = postgres_memory(_pids(url), url)
    assert memory["backends"] >= 1
    assert memory["processes"] > memory["backends"], "background processes are not backends"
    assert 0 < memory["private_mb_per_backend"] <= memory["private_mb_max_backend"]
    assert 0 < memory["shared_mb"] <= bounds["segment_mb"]
    assert memory["pss_mb"] <= memory["rss_mb"]
    # A process that is gone reads as nothing rather than failing the measurement.
    assert postgres_memory([2**22 + 1], url)["rss_mb"] == 0


def test_prewarm_reads_the_tables_into_the_pool(pg_server: TcpPostgres) -> None:
    url = pg_server.create_database(f"prewarm_{uuid.uuid4().hex[:8]}")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE words AS SELECT g AS id, md5(g::text) AS w"
            " FROM generate_series(1, 20000) g"
        )
        conn.execute("CREATE INDEX ON words (w)")
    warmed = prewarm(url)
    assert warmed["blocks"] > 100, "the table and its index were read"
    assert warmed["skipped"] == []
