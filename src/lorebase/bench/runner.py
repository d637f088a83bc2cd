"""Run the chosen scenarios against a fresh `lorebase serve` and report them."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import shutil
import signal
import sys
import time
import traceback
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import orjson

from lorebase import __version__
from lorebase.bench.client import ApiClient
from lorebase.bench.context import (
    DEFAULT,
    QUICK,
    SIDE_BY_SIDE,
    Bench,
    Options,
    ScenarioResult,
    Sizes,
    Skip,
)
from lorebase.bench.fake_embedder import FakeEmbedder
from lorebase.bench.scenarios import DEFAULT_SCENARIOS, SCENARIOS, SIDE_BY_SIDE_SCENARIOS
from lorebase.bench.server import FOREIGN_ENV, ServeProcess
from lorebase.settings import Settings

log = logging.getLogger(__name__)

# The bench server's environment: limits high enough that the load is not throttled (the
# limiter still runs on every request), a token that outlives the run.
SERVER_ENV = {
    "RATE_LIMIT_QUERY": "100000000/minute",
    "RATE_LIMIT_AUTH": "100000/minute",
    "RATE_LIMIT_INGEST": "100000/minute",
    "ACCESS_TOKEN_TTL_SECONDS": "3600",
    "LOG_LEVEL": "INFO",
    "ACCESS_LOG": "true",
}
REPORT_VERSION = 1


def _machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _settings_environment() -> dict[str, str]:
    names = {name.upper() for name in Settings.model_fields}
    hidden = ("KEY", "SECRET", "TOKEN", "PASSWORD", "URL")
    return {
        name: ("[set]" if any(word in name for word in hidden) else value)
        for name, value in sorted(os.environ.items())
        if name in names and name not in SERVER_ENV and not name.startswith(FOREIGN_ENV)
    }


def _sizes(options: Options) -> Sizes:
    if options.side_by_side:
        # Quick: the small corpus as ingested, so a smoke run stays short.
        sizes = replace(QUICK, search_chunks=0) if options.quick else SIDE_BY_SIDE
    else:
        sizes = QUICK if options.quick else DEFAULT
    if options.corpus_kb is not None:
        sizes = replace(sizes, corpus_bytes=options.corpus_kb * 1024)
    return sizes


def _scenario_names(options: Options) -> list[str]:
    names = list(options.scenarios) or (
        SIDE_BY_SIDE_SCENARIOS if options.side_by_side else DEFAULT_SCENARIOS
    )
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; known: {list(SCENARIOS)}")
    return [name for name in SCENARIOS if name in names]  # canonical order


def run_bench(options: Options) -> dict[str, Any]:
    """Start a server in a fresh data dir (with the fake embedder for a side-by-side run), run
    the scenarios, return the report."""
    with contextlib.ExitStack() as stack:
        env = dict(SERVER_ENV)
        if options.side_by_side:
            env.update(stack.enter_context(FakeEmbedder()).server_env())
        return _run_bench(options, env)


def _run_scenarios(bench: Bench, names: list[str]) -> list[ScenarioResult]:
    results: list[ScenarioResult] = []
    for name in names:
        function, target = SCENARIOS[name]
        result = ScenarioResult(name=name, target=target)
        log.info("scenario %s", name)
        scenario_start = time.perf_counter()
        try:
            function(bench, result)
        except Skip as exc:
            result.status, result.reason = "skipped", str(exc)
        except Exception as exc:
            result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"
            log.error("scenario %s failed:\n%s", name, traceback.format_exc())
        result.seconds = time.perf_counter() - scenario_start
        results.append(result)
        _print_progress(result)
    return results


def _run_bench(options: Options, env: dict[str, str]) -> dict[str, Any]:
    names = _scenario_names(options)
    sizes = _sizes(options)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (options.out_dir / f"run-{stamp}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    server = ServeProcess(
        run_dir / "data", workers=options.workers, log_path=run_dir / "serve.log", env=env
    )
    api = ApiClient(server.url)
    bench = Bench(options, sizes=sizes, server=server, api=api, run_dir=run_dir)
    report = _report_header(options, bench)
    results: list[ScenarioResult] = []
    began = time.perf_counter()
    try:
        started = time.perf_counter()
        server.start()
        report["server"]["startup_seconds"] = round(time.perf_counter() - started, 1)
        time.sleep(1.0)
        report["server"]["memory_idle_after_start"] = asdict(server.memory())
        api.register_and_login("bench-user", "bench password 0123456789")
        bench.paths = api.paths()
        results = _run_scenarios(bench, names)
        report["server"]["memory_idle_at_end"] = asdict(server.memory())
    finally:
        api.close()
        server.stop()
        if not options.keep_data:
            shutil.rmtree(run_dir / "data", ignore_errors=True)
    report["scenarios"] = [result.as_dict() for result in results]
    report["seconds"] = round(time.perf_counter() - began, 1)
    report["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["run_dir"] = str(run_dir)
    return report


def _report_header(options: Options, bench: Bench) -> dict[str, Any]:
    """What the report says of the run before any scenario: versions, machine, sizes, server."""
    return {
        "version": REPORT_VERSION,
        "lorebase_version": __version__,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": ("side-by-side " if options.side_by_side else "")
        + ("quick" if options.quick else "default"),
        "machine": _machine(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "sizes": asdict(bench.sizes),
        "server": {
            "workers": options.workers,
            "generator": bench.generator,
            "embedder": bench.embedder,
            "env": SERVER_ENV,
            # Settings the caller's environment passes on to the server (e.g. HNSW_EF_SEARCH).
            "settings_from_environment": _settings_environment(),
        },
        "scenarios": [],
    }


def _print_progress(result: ScenarioResult) -> None:
    state = result.status if result.status != "ok" else ("met" if result.met else "not met")
    print(f"  {result.name}: {state} ({result.seconds:.0f}s)", file=sys.stderr, flush=True)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _summary(row: dict[str, Any]) -> str:
    details = row["details"]
    if row["status"] != "ok":
        return str(row["reason"])
    if row["name"] == "ingest" and "ratio" not in details:
        return (
            f"{details['server_cpu_s_per_mb']} CPU s/MB, {details['ingest_kb_per_s']} kB/s "
            f"({details['documents']} files, {details['uploaded_bytes'] / 1e6:.2f} MB, "
            f"{details['chunks']} chunks)"
        )
    if row["name"] == "ingest":
        return (
            f"{details['ingest_chunks_per_s']} chunks/s vs raw "
            f"{details['raw_embedder_chunks_per_s']} = {details['ratio']:.0%} "
            f"({details['chunks']} chunks)"
        )
    if row["name"].startswith("hnsw"):
        chosen = details.get("chosen_ef_search")
        parts = []
        for ef, stats in details.get("by_ef", {}).items():
            mark = "*" if str(chosen) == ef else ""
            parts.append(f"ef{ef}{mark}: {stats['recall']:.3f} @ p50 {stats['p50_ms']}ms")
        return f"{details.get('vectors')} vectors; " + ", ".join(parts)
    if row["name"] == "search-hybrid" and "semantic_over_hybrid" in details:
        return f"semantic/hybrid throughput = {details['semantic_over_hybrid']}x"
    if row["name"] == "search-cached":
        return f"second call cached={details.get('second_call_cached')}"
    return str(details.get("note", ""))


def format_table(report: dict[str, Any]) -> str:
    """The report as a fixed-width table (one row per scenario)."""
    header = (
        f"{'scenario':<16} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'cpu ms/req':>10} {'PSS idle':>9} {'PSS peak':>9} {'target':>7}  notes"
    )
    lines = [header, "-" * len(header)]
    for row in report["scenarios"]:
        load = row["load"] or {}
        idle = (row["memory_idle"] or {}).get("pss_mb")
        peak = (row["memory_peak"] or {}).get("pss_mb")
        met = {True: "met", False: "NOT met", None: "-"}[row["met"]]
        if row["status"] != "ok":
            met = row["status"]
        lines.append(
            f"{row['name']:<16} {_fmt(load.get('rps')):>8} {_fmt(load.get('p50_ms'), 2):>8} "
            f"{_fmt(load.get('p95_ms'), 2):>8} {_fmt(load.get('p99_ms'), 2):>8} "
            f"{load.get('errors', '-')!s:>6} {_fmt(row['server_cpu_ms_per_request'], 2):>10} "
            f"{_fmt(idle, 0):>9} {_fmt(peak, 0):>9} {met:>7}  {_summary(row)}"
        )
    server = report["server"]
    machine = report["machine"]
    lines.append("")
    lines.append(
        f"server: {server['workers']} worker(s), load generator {server['generator']}; "
        f"idle PSS {server['memory_idle_after_start']['pss_mb']} MiB "
        f"(RSS sum {server['memory_idle_after_start']['rss_mb']} MiB) after start; "
        f"machine: {machine['cpus']} cpus {machine['cpu_model']}, {machine['memory_gb']} GiB; "
        f"load average {report['loadavg_start'][0]} -> {report['loadavg_end'][0]}; "
        f"{report['seconds']}s"
    )
    return "\n".join(lines)


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(options: Options, *, out: TextIO = sys.stdout) -> int:
    """Run, print the table, write the JSON; exit status 1 when a scenario failed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # SIGTERM (CI timeouts, `kill`) unwinds like Ctrl-C, so the server and its embedded
    # PostgreSQL / Redis are stopped and the data dir removed.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    report = run_bench(options)
    path = options.json_path or Path(report["run_dir"]) / "report.json"
    write_report(report, path)
    print(format_table(report), file=out)
    print(f"\nJSON report: {path}", file=out)
    failed = [row["name"] for row in report["scenarios"] if row["status"] == "failed"]
    return 1 if failed else 0
