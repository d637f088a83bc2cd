"""`lorebase bench --quick` end to end: a real server, a real load generator, the JSON report."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import LOREBASE, service_pids

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_quick_bench_reads_writes_a_report(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [
            LOREBASE,
            "bench",
            "--quick",
            "--workers",
            "1",
            "--scenarios",
            "reads-project",
            "--duration",
            "1",  # after the 1 s warm-up: enough requests for the percentiles checked below
            "--json",
            str(report_path),
            "--out-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reads-project" in result.stdout, "the table lists the scenario"

    report = json.loads(report_path.read_text())
    assert report["mode"] == "quick"
    assert report["server"]["workers"] == 1
    assert report["machine"]["cpus"] >= 1
    assert report["server"]["memory_idle_after_start"]["pss_mb"] > 0
    (row,) = report["scenarios"]
    assert row["name"] == "reads-project"
    assert row["status"] == "ok", row["reason"]
    load = row["load"]
    assert load["generator"] in ("wrk", "python")
    assert load["requests"] > 0
    assert load["rps"] > 0
    assert 0 < load["p50_ms"] <= load["p95_ms"] <= load["p99_ms"] <= load["max_ms"]
    assert load["errors"] == 0, "every authenticated read answered 2xx"
    assert row["memory_peak"]["pss_mb"] >= row["memory_idle"]["pss_mb"] * 0.5
    assert row["server_cpu_ms_per_request"] > 0
    assert isinstance(row["met"], bool)
    # The run's server (and its embedded PostgreSQL / Redis) is gone, its data dir removed.
    (run_dir,) = (tmp_path / "out").iterdir()
    assert not (run_dir / "data").exists()
    assert service_pids(run_dir / "data") == []


def test_unknown_scenario_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [LOREBASE, "bench", "--quick", "--scenarios", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 1
    assert "unknown scenario" in result.stderr
    assert "reads-project" in result.stderr
