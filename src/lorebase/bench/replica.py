"""The replica scenario (issue 16): semantic search throughput with one primary, then with the
primary plus one streaming read replica (`DATABASE_REPLICA_URLS`), on the same corpus.

The replica is a hot standby of the run's embedded PostgreSQL, copied with `pg_basebackup -R`
from the same binaries (`lorebase.bench.pgcluster`) and started on a TCP port; the server is
restarted with `DATABASE_REPLICA_URLS` pointing at it, and restarted without it at the end
(before the standby stops, so later scenarios do not wait on a dead replica). Reported per
phase: req/s, CPU milliseconds per request by process (the standby's PostgreSQL included), and
the share of search reads the replica served (`lorebase_search_reads_total`). On one machine
the two servers share the same cores: this shows that the routing works and what it costs, not
more capacity.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from lorebase.bench.context import Bench, ScenarioResult
from lorebase.bench.load import LoadResult, Request
from lorebase.bench.pgcluster import TcpPostgres, standby_of, wait_replayed
from lorebase.bench.seeding import ensure_filled
from lorebase.bench.server import cpu_delta, postmaster, tree_cpu_seconds

JSON = "application/json"
REPLICA_ENV = "DATABASE_REPLICA_URLS"


def fresh_queries(bench: Bench, count: int) -> list[str]:
    """The run's next `count` queries, never sent before in this run (no answer or embedding
    cache hit): past the end of the pool, numbered variants of its queries."""
    pool = bench.query_pool()
    start, bench.query_cursor = bench.query_cursor, bench.query_cursor + count
    return [
        pool[i % len(pool)] + ("" if i < len(pool) else f" {i // len(pool)}")
        for i in range(start, start + count)
    ]


def _requests(project_id: str, texts: list[str]) -> list[Request]:
    def body(text: str) -> bytes:
        search = {"project_id": project_id, "query_text": text, "top_k": 5}
        flags = {"use_hybrid_search": False, "use_re_ranking": False, "use_agentic_rag": False}
        return orjson.dumps(search | flags)

    return [Request("POST", "/api/v1/rag/query", body(text), JSON) for text in texts]


def _phase(
    bench: Bench, name: str, project_id: str, standby: TcpPostgres | None
) -> tuple[dict[str, Any], LoadResult]:
    """One semantic-search load with fresh queries; the figures of this phase."""
    warm = fresh_queries(bench, max(50, bench.sizes.queries_per_scenario // 5))
    texts = fresh_queries(bench, bench.sizes.queries_per_scenario)

    sub = ScenarioResult(name=name, target="")
    roots = _standby_roots(standby)
    before = tree_cpu_seconds(roots)
    load = bench.load(
        sub,
        _requests(project_id, texts),
        warmup_requests=_requests(project_id, warm),
        connections=bench.sizes.search_connections,
    )
    replica_cpu = cpu_delta(before, tree_cpu_seconds(roots))["total"] if roots else 0.0
    cpu = dict(sub.details["server_cpu_s_by_process"])
    cpu["replica-postgres"] = replica_cpu
    cpu["total"] = round(cpu["total"] + replica_cpu, 2)
    per_request = {k: round(1000 * v / max(1, load.requests), 3) for k, v in cpu.items()}
    figures = {
        "rps": round(load.rps, 1),
        "requests": load.requests,
        "errors": load.errors,
        "p50_ms": load.p50_ms,
        "p99_ms": load.p99_ms,
        "cpu_s_by_process": cpu,
        "cpu_ms_per_request_by_process": per_request,
        "search_reads": search_reads(bench.server.url),
        "loadavg": [sub.loadavg_before, sub.loadavg_after],
    }
    return figures, load


def _standby_roots(standby: TcpPostgres | None) -> list[int]:
    found = postmaster(standby.data) if standby is not None else None
    return [found[0]] if found is not None else []


def search_reads(url: str, scrapes: int = 8) -> dict[str, Any]:
    """`lorebase_search_reads_total` by target, summed over the workers that answered
    `scrapes` scrapes of /metrics (each worker counts its own; the load is over, so a worker's
    counts do not change between scrapes), and the replica's share."""
    seen: set[tuple[float, float]] = set()
    for _ in range(scrapes):
        counts = {"primary": 0.0, "replica": 0.0}
        for line in httpx.get(url + "/metrics", timeout=10.0).text.splitlines():
            if line.startswith("lorebase_search_reads_total{"):
                target = line.split('target="', 1)[1].split('"', 1)[0]
                counts[target] = float(line.rpartition(" ")[2])
        seen.add((counts["primary"], counts["replica"]))
    primary = sum(p for p, _ in seen)
    replica = sum(r for _, r in seen)
    share = replica / (primary + replica) if primary + replica else 0.0
    return {"primary": primary, "replica": replica, "replica_share": round(share, 3)}


def _restart(bench: Bench, replica_url: str | None) -> None:
    """Restart the run's server with (or without) the replica."""
    bench.server.stop()
    if replica_url is None:
        bench.server.env.pop(REPLICA_ENV, None)
    else:
        bench.server.env[REPLICA_ENV] = replica_url
    bench.server.start()


def replica(bench: Bench, result: ScenarioResult) -> None:
    bench.require("/api/v1/rag/query")
    seed = ensure_filled(bench)
    alone, _ = _phase(bench, "primary", seed.project_id, None)
    socket_dir, port = _socket_of(bench)
    standby = standby_of(
        f"host={socket_dir} port={port} user=postgres", bench.server.data_dir.parent / "replica"
    )
    try:
        replica_url = f"postgresql://postgres@127.0.0.1:{standby.port}/postgres?sslmode=disable"
        wait_replayed(bench.server.database_url, standby, timeout=120)
        _restart(bench, replica_url)
        paired, result.load = _phase(bench, "primary+replica", seed.project_id, standby)
    finally:
        _restart(bench, None)
        standby.remove()
    result.details.update({"chunks": seed.filled_to, "primary": alone, "primary+replica": paired})
    share = paired["search_reads"]["replica_share"]
    result.details["replica_share"] = share
    result.details["rps_ratio"] = round(paired["rps"] / max(alone["rps"], 1e-9), 2)
    # The routing works: most search reads went to the replica, and nothing failed.
    result.met = share >= 0.5 and alone["errors"] == 0 and paired["errors"] == 0


def _socket_of(bench: Bench) -> tuple[str, str]:
    lines = (bench.server.data_dir / "postgres" / "postmaster.pid").read_text().splitlines()
    return lines[4].strip(), lines[3].strip()
