"""What a benchmark run holds while it runs: sizes, the server, the API client, the seeds made
so far, and the one way to put a scenario under load and record what happened."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lorebase.bench import corpus, profile
from lorebase.bench.client import ApiClient
from lorebase.bench.load import LoadResult, LoadSpec, Request, resolve_generator, run_load
from lorebase.bench.server import Memory, MemorySampler, ServeProcess, cpu_delta


@dataclass(frozen=True)
class Options:
    """A run's choices, as `lorebase bench` takes them."""

    quick: bool = False
    workers: int = 2
    scenarios: tuple[str, ...] = ()
    json_path: Path | None = None
    out_dir: Path = Path("bench/out")
    generator: str = "auto"
    connections: int | None = None
    duration: float | None = None
    keep_data: bool = False
    profile: bool = False
    corpus_kb: int | None = None
    minutes: float = 10.0
    # Issue 13's side-by-side run: the fake OpenAI-compatible embedder, the 200-file corpus.
    side_by_side: bool = False


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is; `QUICK` is a CI smoke run, `DEFAULT` the measured one."""

    projects: int
    task_projects: int
    tasks_per_project: int
    corpus_bytes: int | None
    search_chunks: int
    index_vectors: int
    duration: float
    warmup: float
    queries_per_scenario: int
    recall_queries: int
    ef_values: tuple[int, ...]
    ingest_timeout: float = 900.0
    ingest_stall: float = 120.0
    read_connections: int = 32
    search_connections: int = 16
    # Top the corpus up with Debian copyright files to this many documents (side by side).
    corpus_files: int | None = None


QUICK = Sizes(
    projects=5,
    task_projects=2,
    tasks_per_project=5,
    corpus_bytes=30_000,
    search_chunks=2_000,
    index_vectors=10_000,
    duration=3.0,
    warmup=1.0,
    queries_per_scenario=1_500,
    recall_queries=20,
    ef_values=(100, 300),
    ingest_timeout=180.0,
    ingest_stall=60.0,
)
DEFAULT = Sizes(
    projects=100,
    task_projects=10,
    tasks_per_project=25,
    corpus_bytes=None,
    search_chunks=100_000,
    index_vectors=1_000_000,
    duration=15.0,
    # Long enough for each worker's connection pool to grow to the load's concurrency (it
    # adds one connection at a time), so the measured window does not pay for connecting.
    warmup=5.0,
    queries_per_scenario=8_000,
    recall_queries=200,
    ef_values=(40, 100, 200, 300, 400),
)
# The side-by-side run of issue 13: the 200-file / ~2 MB corpus as ingested (no synthetic
# top-up), searched with the fake OpenAI-compatible embedder (1536-d).
SIDE_BY_SIDE = replace(DEFAULT, corpus_files=200, search_chunks=0)


@dataclass
class ScenarioResult:
    """One row of the report."""

    name: str
    target: str
    status: str = "ok"  # ok | skipped | failed
    reason: str | None = None
    met: bool | None = None
    load: LoadResult | None = None
    memory_idle: Memory | None = None
    memory_peak: Memory | None = None
    server_cpu_s: float | None = None
    loadavg_before: float | None = None
    loadavg_after: float | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "target": self.target,
            "met": self.met,
            "seconds": round(self.seconds, 1),
            "load": self.load.as_dict() if self.load else None,
            "memory_idle": asdict(self.memory_idle) if self.memory_idle else None,
            "memory_peak": asdict(self.memory_peak) if self.memory_peak else None,
            "server_cpu_s": self.server_cpu_s,
            "server_cpu_ms_per_request": None,
            "loadavg_before": self.loadavg_before,
            "loadavg_after": self.loadavg_after,
            "details": self.details,
        }
        if self.load and self.load.requests and self.server_cpu_s is not None:
            out["server_cpu_ms_per_request"] = round(
                1000 * self.server_cpu_s / self.load.requests, 3
            )
        return out


class Skip(Exception):
    """The scenario cannot run against this server (its route is missing)."""


@dataclass
class CorpusSeed:
    project_id: str
    documents: int
    chunks: list[dict[str, Any]]
    model: str
    dim: int
    ingest_seconds: float
    jobs_failed: int
    memory_peak: Memory | None
    server_cpu_s: float
    server_cpu_by_process: dict[str, float]
    uploaded_bytes: int = 0
    filled_to: int = 0
    fill: dict[str, Any] = field(default_factory=dict)


class Bench:
    """The state shared by the scenarios of one run."""

    def __init__(
        self, options: Options, *, sizes: Sizes, server: ServeProcess, api: ApiClient, run_dir: Path
    ) -> None:
        self.sizes = sizes
        # "local" (the server's default embedder) or "fake-openai" (`bench.fake_embedder`).
        self.embedder = "fake-openai" if options.side_by_side else "local"
        self.server = server
        self.api = api
        self.generator, self.wrk_path = resolve_generator(options.generator)
        self.connections = options.connections
        self.duration = options.duration if options.duration is not None else sizes.duration
        self.profile_dir = run_dir / "profiles" if options.profile else None
        self.soak_minutes = options.minutes
        self.paths: set[str] = set()
        self.projects: list[str] = []
        self.task_projects: list[str] = []
        self.corpus: CorpusSeed | None = None
        self.query_cursor = 0
        self.semantic_rps: float | None = None
        self._query_pool: list[str] | None = None

    def query_pool(self) -> list[str]:
        """Distinct real-text queries, enough for every scenario of the run."""
        if self._query_pool is None:
            docs = corpus.documents(self.sizes.corpus_bytes, files=self.sizes.corpus_files)
            need = 3 * self.sizes.queries_per_scenario + 2 * self.sizes.recall_queries + 500
            self._query_pool = corpus.queries(docs, need, seed=1234)
        return self._query_pool

    def require(self, *paths: str) -> None:
        """Skip unless the server serves every path (OpenAPI templates, e.g. `/jobs/{`)."""
        missing = [p for p in paths if not any(known.startswith(p) for known in self.paths)]
        if missing:
            raise Skip(f"the server has no route {', '.join(missing)} yet")

    def run_load(self, spec: LoadSpec) -> LoadResult:
        """`spec` put to the server by the run's load generator."""
        return run_load(spec, generator=self.generator, wrk_path=self.wrk_path)

    def load(
        self,
        result: ScenarioResult,
        requests: list[Request],
        *,
        warmup_requests: list[Request] | None = None,
        connections: int,
    ) -> LoadResult:
        """Warm up, then load the server for the scenario's duration, sampling its memory."""
        token = self.api.fresh_token()
        headers = {"Authorization": f"Bearer {token}"}
        conns = self.connections or connections
        if self.sizes.warmup > 0:
            warmup = LoadSpec(
                base_url=self.server.url,
                requests=warmup_requests or requests,
                headers=headers,
                duration=self.sizes.warmup,
                connections=conns,
            )
            self.run_load(warmup)
        result.memory_idle = self.server.memory()
        result.loadavg_before = round(os.getloadavg()[0], 2)
        spy = None
        if self.profile_dir is not None and self.server.process is not None:
            target = profile.worker_pids(self.server.process.pid)[0]
            stacks = self.profile_dir / f"{result.name}.txt"
            spy = profile.start(target, stacks, duration=self.duration)
        cpu_before = self.server.cpu_seconds()
        with MemorySampler(self.server.roots()) as sampler:
            spec = LoadSpec(
                base_url=self.server.url,
                requests=requests,
                headers=headers,
                duration=self.duration,
                connections=conns,
            )
            load = self.run_load(spec)
        spent = cpu_delta(cpu_before, self.server.cpu_seconds())
        result.server_cpu_s = spent["total"]
        result.details["server_cpu_s_by_process"] = spent
        result.loadavg_after = round(os.getloadavg()[0], 2)
        result.memory_peak = sampler.peak or self.server.memory()
        if spy is not None and self.profile_dir is not None:
            spy.wait(timeout=60)
            stacks = self.profile_dir / f"{result.name}.txt"
            if stacks.exists():
                result.details["profile"] = {
                    "stacks": str(stacks),
                    **profile.summarize(stacks),
                }
        result.load = load
        result.details["connections"] = conns
        return load
