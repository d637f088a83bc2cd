"""`lorebase bench --quick --scenarios replica`: the embedded PostgreSQL gets a streaming standby
(pg_basebackup), the server is restarted with DATABASE_REPLICA_URLS, and semantic searches are
measured on the primary alone, then with the replica serving them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import LOREBASE, service_pids

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def test_replica_scenario_measures_both_setups(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = subprocess.run(
        [
            LOREBASE,
            "bench",
            "--quick",
            "--workers",
            "1",
            "--scenarios",
            "replica",
            # What is checked is the routing (reads move to the replica), not throughput: a
            # small real corpus (two topics, topped up to 2,000 chunks) and 1 s of load each.
            "--corpus-kb",
            "8",
            "--duration",
            "1",
            "--json",
            str(report_path),
            "--out-dir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads(report_path.read_text())["scenarios"]
    assert row["name"] == "replica"
    assert row["status"] == "ok", row["reason"]
    details = row["details"]
    alone, paired = details["primary"], details["primary+replica"]
    for phase in (alone, paired):
        assert phase["requests"] > 0
        assert phase["rps"] > 0
        assert phase["errors"] == 0
        assert phase["cpu_ms_per_request_by_process"]["total"] > 0
    # Without a replica every search reads the primary; with one, the caught-up replica
    # serves them (its PostgreSQL spends CPU on them).
    assert alone["search_reads"]["replica"] == 0
    assert alone["search_reads"]["primary"] > 0
    assert paired["search_reads"]["replica_share"] >= 0.5
    assert paired["cpu_s_by_process"]["replica-postgres"] > 0
    assert row["met"] is True
    # The standby and the server are gone afterwards.
    (run_dir,) = (tmp_path / "out").iterdir()
    assert not (run_dir / "replica").exists()
    assert service_pids(run_dir / "data") == []
