"""The soak scenario (issue 18): mixed load with distinct query texts for `--minutes`, memory
of every process (server, each worker, PostgreSQL, Redis) at start, after warm-up and at the
end, Redis against its budget, and a rate limit checked against the filled Redis at the end.

Mix per ten requests: 3 project reads, 1 project list, 1 task list, 2 semantic searches,
2 hybrid searches and 1 answer (agentic, the configured LLM); every search has its own text.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

from lorebase.bench.context import Bench, ScenarioResult
from lorebase.bench.load import LoadResult, LoadSpec, Request, query_request
from lorebase.bench.pgmemory import postgres_memory, prewarm, shared_memory_bound
from lorebase.bench.seeding import ensure_corpus, ensure_projects, ensure_task_projects
from lorebase.bench.server import Ticker, _kb_fields, _kind, process_tree
from lorebase.bench.soak_ttl import cache_counters, hit_report, repeat_requests, zipf_texts
from lorebase.cache import Cache
from lorebase.embedded import EmbeddedRedis
from lorebase.ratelimit import RateLimiter
from lorebase.settings import Settings

log = logging.getLogger(__name__)
WARMUP_SECONDS = 60.0
SAMPLE_SECONDS = 15.0
# Requests prepared per second of soak: more than the server answers here, so the generator
# rarely wraps around to a text it already sent.
REQUESTS_PER_SECOND = 150
SOAK_TIMEOUT_SECONDS = 60.0


def _distinct_texts(bench: Bench, count: int) -> list[str]:
    """`count` distinct query texts: the run's real queries, then numbered variants."""
    pool = bench.query_pool()
    return [
        pool[i % len(pool)] + ("" if i < len(pool) else f" {i // len(pool)}") for i in range(count)
    ]


def mixed_requests(
    *, projects: list[str], task_projects: list[str], corpus_project: str, texts: list[str]
) -> list[Request]:
    """Rounds of ten requests (see the module docstring), one search text each, in order."""
    requests: list[Request] = []
    searches = iter(texts)
    rounds = len(texts) // 5
    for i in range(rounds):
        pid = projects[i % len(projects)]
        requests += [Request("GET", f"/api/v1/projects/{p}") for p in (pid, projects[-1 - i % 3])]
        requests.append(Request("GET", f"/api/v1/projects/{projects[(i * 7) % len(projects)]}"))
        requests.append(Request("GET", "/api/v1/projects?limit=20"))
        tasks = task_projects[i % len(task_projects)]
        requests.append(Request("GET", f"/api/v1/tasks?project_id={tasks}"))
        for hybrid, answer in ((False, False), (False, False), (True, False), (True, False)):
            requests.append(
                query_request(corpus_project, next(searches), hybrid=hybrid, answer=answer)
            )
        requests.append(query_request(corpus_project, next(searches), hybrid=True, answer=True))
    return requests


def process_memory(bench: Bench) -> dict[str, Any]:
    """RSS and PSS (MiB) of the server, each worker and Redis; PostgreSQL's processes by kind
    of memory (`lorebase.bench.pgmemory`: shared pool, private per backend)."""
    server_pid = bench.server.process.pid if bench.server.process is not None else -1
    out: dict[str, Any] = {}
    postgres: list[int] = []
    for pid in process_tree(bench.server.roots()):
        if _kind(pid) == "postgres":
            postgres.append(pid)
            continue
        rss = _kb_fields(Path(f"/proc/{pid}/status"), ("VmRSS",)).get("VmRSS", 0) / 1024
        pss = _kb_fields(Path(f"/proc/{pid}/smaps_rollup"), ("Pss",)).get("Pss", 0) / 1024
        name = _role(pid, server_pid)
        entry = out.setdefault(name, {"rss_mb": 0.0, "pss_mb": 0.0, "processes": 0})
        entry["rss_mb"] = round(entry["rss_mb"] + rss, 1)
        entry["pss_mb"] = round(entry["pss_mb"] + pss, 1)
        entry["processes"] += 1
    out["postgres"] = postgres_memory(postgres, bench.server.database_url)
    return out


def _role(pid: int, server_pid: int) -> str:
    kind = _kind(pid)
    if pid == server_pid or kind != "python":
        return "server" if pid == server_pid else kind
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "other"
    return "python-helper" if b"resource_tracker" in cmdline else f"worker-{pid}"


def _redis_socket(bench: Bench) -> str:
    return f"unix://{EmbeddedRedis((bench.server.data_dir / 'redis').resolve()).socket}"


async def _redis_state(url: str) -> dict[str, Any]:
    cache = Cache(url)
    try:
        memory = await cache.redis.info("memory")
        stats = await cache.redis.info("stats")
        keyspace = await cache.redis.info("keyspace")
        policy = await cache.redis.config_get("maxmemory-policy")
    finally:
        await cache.close()
    return {
        "used_memory_mb": round(memory["used_memory"] / 2**20, 1),
        "maxmemory_mb": round(memory["maxmemory"] / 2**20, 1),
        "policy": policy.get("maxmemory-policy"),
        "evicted_keys": stats["evicted_keys"],
        "expired_keys": stats["expired_keys"],
        "keys": sum(db.get("keys", 0) for db in keyspace.values()),
    }


async def _hit(url: str, who: str, rate: str) -> bool:
    cache = Cache(url)
    try:
        return (await RateLimiter(cache).hit(name="soak", who=who, rate=rate)).allowed
    finally:
        await cache.close()


async def _limit_holds(url: str, started_bucket: str) -> dict[str, Any]:
    """At the end, in the soaked Redis: the 1/hour bucket emptied before the load still refuses
    (it was not evicted), and a fresh 2/minute bucket refuses its third hit."""
    kept = await _hit(url, started_bucket, "1/hour")
    fresh = f"soak-fresh-{time.time()}"
    hits = [await _hit(url, fresh, "2/minute") for _ in "abc"]
    held = not kept and hits == [True, True, False]
    return {"bucket_from_start_allowed": kept, "fresh_bucket_hits": hits, "held": held}


class _Sampler(Ticker):
    """Process memory and Redis state every `SAMPLE_SECONDS` while the main load runs."""

    def __init__(self, bench: Bench, redis_url: str) -> None:
        super().__init__(SAMPLE_SECONDS)
        self.bench, self.redis_url = bench, redis_url
        self.samples: list[dict[str, Any]] = []
        self._began = time.monotonic()

    def tick(self) -> None:
        sample: dict[str, Any] = {"t_s": round(time.monotonic() - self._began)}
        sample["processes"] = process_memory(self.bench)
        sample["redis"] = asyncio.run(_redis_state(self.redis_url))
        self.samples.append(sample)


def _load(bench: Bench, requests: list[Request], seconds: float) -> LoadResult:
    spec = LoadSpec(
        base_url=bench.server.url,
        requests=requests,
        headers={"Authorization": f"Bearer {bench.api.fresh_token(max_age=3600)}"},
        duration=seconds,
        connections=bench.connections or 8,
        # A soak counts failures, not slowness: on a shared, loaded machine a search can queue
        # for more than the default 10 s and would count as a socket error.
        timeout=SOAK_TIMEOUT_SECONDS,
    )
    return bench.run_load(spec)


def soak(bench: Bench, result: ScenarioResult) -> None:
    bench.require("/api/v1/rag/query", "/api/v1/tasks")
    total = max(60.0, bench.soak_minutes * 60)
    warmup = min(WARMUP_SECONDS, total / 5)
    projects, tasks = ensure_projects(bench), ensure_task_projects(bench)
    seed = ensure_corpus(bench)
    texts = _distinct_texts(bench, int(total * REQUESTS_PER_SECOND / 2))
    requests = mixed_requests(
        projects=projects, task_projects=tasks, corpus_project=seed.project_id, texts=texts
    )
    cut = int(len(requests) * warmup / total) // 10 * 10
    redis_url = _redis_socket(bench)
    phases: dict[str, Any] = {"start": process_memory(bench)}
    redis: dict[str, Any] = {"start": asyncio.run(_redis_state(redis_url))}
    started_bucket = f"soak-start-{time.time()}"
    asyncio.run(_hit(redis_url, started_bucket, "1/hour"))  # empty now, for an hour
    # The warm-up reads the corpus into the buffer pool, then runs the load, so "after
    # warm-up" is the steady state rather than a pool still being filled page by page.
    prewarmed = prewarm(bench.server.database_url)
    warm = _load(bench, requests[:cut], warmup)
    phases["after_warmup"] = process_memory(bench)
    redis["after_warmup"] = asyncio.run(_redis_state(redis_url))
    with _Sampler(bench, redis_url) as sampler:
        load = _load(bench, requests[cut:], total - warmup)
    phases["end"] = process_memory(bench)
    redis["end"] = asyncio.run(_redis_state(redis_url))
    limit = asyncio.run(_limit_holds(redis_url, started_bucket))
    sent = min(len(texts), (warm.requests + load.requests) // 10 * 5)
    repeats = _repeat_phase(bench, seed.project_id, texts[:sent], max(60.0, total / 10))
    result.load = load
    verdict = _verdict(bench, phases, redis["end"])
    result.details.update(
        {
            "minutes": round(total / 60, 1),
            "warmup": warm.as_dict(),
            "prewarmed": prewarmed,
            "errors_total": warm.errors + load.errors,
            "memory_by_process": phases,
            "redis": redis,
            "timeline": sampler.samples,
            "rate_limit_at_end": limit,
            "growth_after_warmup": _growth(phases),
            "checks": verdict,
            "postgres_bounds": shared_memory_bound(bench.server.database_url),
            "repeat_phase": repeats,
            "metrics": _cache_metrics(bench),
        }
    )
    result.met = warm.errors + load.errors == 0 and all(verdict.values()) and limit["held"]


def _repeat_phase(
    bench: Bench, project_id: str, history: list[str], seconds: float
) -> dict[str, Any]:
    """Searches repeating earlier texts (`soak_ttl`), after the memory was measured: the hits
    per cache kind and their ages, from which the TTLs are chosen."""
    try:
        before = cache_counters(bench.server.url)
        texts = zipf_texts(history, int(seconds * REQUESTS_PER_SECOND))
        load = _load(bench, repeat_requests(project_id, texts), seconds)
        kinds = hit_report(before, cache_counters(bench.server.url))
    except Exception as exc:  # the soak's verdict stands without it; say what went wrong
        log.exception("the soak's repeat phase failed")
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"seconds": seconds, "history": len(history), "load": load.as_dict(), "kinds": kinds}


def _verdict(bench: Bench, phases: dict[str, Any], redis_end: dict[str, Any]) -> dict[str, bool]:
    """Each bound checked at the end: Redis within its budget, every Python process and
    PostgreSQL's private memory per backend no more than 10 % above its size after warm-up
    (shrinking is fine: pool recycling hands back a backend's memory), PostgreSQL's shared
    memory within its configured segment and its backends within the pools' bound."""
    bounds = shared_memory_bound(bench.server.database_url)
    postgres = phases["end"]["postgres"]
    default = Settings.model_fields["database_pool_max"].default
    pool_max = int(os.environ.get("DATABASE_POOL_MAX", default))
    checks = {
        "redis_within_budget": redis_end["maxmemory_mb"] == 0
        or redis_end["used_memory_mb"] <= redis_end["maxmemory_mb"],
        **growth_checks(_growth(phases)),
        "postgres_shared_within_segment": postgres["shared_mb"] <= bounds["segment_mb"],
        # Each serve worker's pool (its job worker's included) and its LISTEN connection.
        "postgres_backends_within_pools": postgres["backends"]
        <= (pool_max + 1) * bench.server.workers,
    }
    return checks


def growth_checks(growth: dict[str, float]) -> dict[str, bool]:
    """Growth bounds, one-sided: a process may shrink (a recycled pool connection hands its
    backend's memory back) but not grow more than 10 % past its size after warm-up."""
    return {
        "processes_within_10pct": all(
            g <= 10.0 for name, g in growth.items() if name not in ("redis", "postgres")
        ),
        "postgres_private_per_backend_within_10pct": growth.get("postgres", 0.0) <= 10.0,
    }


def _growth(phases: dict[str, Any]) -> dict[str, float]:
    """Per process: RSS change from after warm-up to the end, in percent; for PostgreSQL the
    private memory per client backend (its shared pool is checked against its bound)."""
    out: dict[str, float] = {}
    for name, end in phases["end"].items():
        base = phases["after_warmup"].get(name)
        field = "private_mb_per_backend" if name == "postgres" else "rss_mb"
        if base and base[field] > 0:
            out[name] = round(100 * (end[field] - base[field]) / base[field], 1)
    return out


def _cache_metrics(bench: Bench) -> dict[str, float]:
    """The cache counters of whichever worker answers /metrics (per process, not summed)."""
    import httpx

    text = httpx.get(bench.server.url + "/metrics", timeout=10.0).text
    wanted = (
        "lorebase_cache_requests_total",
        "lorebase_cache_written_bytes_total",
        "lorebase_cache_hit_age_seconds_bucket",
        "lorebase_process_cache_entries",
        "lorebase_database_connections",
    )
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
