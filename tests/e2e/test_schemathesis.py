"""Schemathesis over the whole OpenAPI document against `lorebase serve` (issue 14): generated
requests and stateful sequences, with a token, under every check (no 5xx, documented statuses
and media types, conforming bodies...). The budget is small (a few examples per operation, about
20 s on an idle machine); raise ST_MAX_EXAMPLES for a longer run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from tests.e2e.conftest import LorebaseServer

ST = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "st")


def test_generated_requests_get_no_server_errors(
    server_factory: type[LorebaseServer], tmp_path: Path
) -> None:
    server = server_factory(
        env={
            "RATE_LIMIT_QUERY": "100000/minute",
            "RATE_LIMIT_INGEST": "100000/minute",
            "RATE_LIMIT_AUTH": "100000/minute",
            "RATE_LIMIT_AUTH_IP": "100000/minute",
            "RATE_LIMIT_REGISTER": "100000/minute",
            "RATE_LIMIT_REFRESH": "100000/minute",
        }
    )
    server.start()
    user = {"username": "fuzzer", "password": "a long enough password"}
    assert httpx.post(f"{server.url}/api/v1/auth/register", json=user).status_code == 201
    token = httpx.post(f"{server.url}/api/v1/auth/token", data=user).json()["access_token"]
    result = subprocess.run(
        [
            ST,
            "run",
            f"{server.url}/api/openapi.json",
            "--checks",
            os.environ.get("ST_CHECKS", "all"),
            # A schema-valid request may still be refused for what it means (a git URL that
            # resolves to a private address, a file whose bytes lie about its type): 4xx by design.
            "--exclude-checks",
            "positive_data_acceptance",
            "--phases",
            "examples,fuzzing,stateful",
            "--max-examples",
            os.environ.get("ST_MAX_EXAMPLES", "3"),
            "--header",
            f"Authorization: Bearer {token}",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
