"""`lorebase serve` from a user's point of view: start, use, restart, stop cleanly.

The tests that need a running server share one (`served`, started once for the module); each
leaves it running (restarting it if it stopped it). kill -9 gets a server of its own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lorebase.serving import default_workers
from tests.e2e.conftest import LOREBASE, LorebaseServer, service_pids


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LorebaseServer]:
    server = LorebaseServer(tmp_path_factory.mktemp("served") / "data")
    try:
        yield server
    finally:
        if server.process is not None:
            server.stop()
        for pid in service_pids(server.data_dir):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def served(shared_server: LorebaseServer) -> LorebaseServer:
    """The module's server, running."""
    if shared_server.process is None:
        shared_server.start()
    return shared_server


def _register_and_login(base: str, username: str = "newcomer") -> dict[str, str]:
    user = {"username": username, "password": "a long enough password"}
    # Password hashing at the production cost: seconds on a loaded machine, not httpx's 5.
    made = httpx.post(f"{base}/api/v1/auth/register", json=user, timeout=60)
    assert made.status_code == 201
    token = httpx.post(f"{base}/api/v1/auth/token", data=user, timeout=60)
    assert token.status_code == 200
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_serve_restart_keeps_data_and_stops_cleanly(served: LorebaseServer) -> None:
    server = served
    username = f"keeper-{uuid.uuid4().hex[:6]}"
    headers = _register_and_login(server.url, username)
    project = httpx.post(f"{server.url}/api/v1/projects", json={"name": "kept"}, headers=headers)
    assert project.status_code == 201
    assert service_pids(server.data_dir), "embedded postgres/redis should be running"

    assert server.stop(signal.SIGTERM) in (0, 128 + signal.SIGTERM)
    deadline = time.monotonic() + 10
    while service_pids(server.data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert service_pids(server.data_dir) == [], "serve left embedded services running"

    server.start()
    again = httpx.get(f"{server.url}/api/v1/projects/{project.json()['id']}", headers=headers)
    assert again.status_code == 200, "data (and the generated secret key) survive a restart"
    assert again.json()["name"] == "kept"
    wrong = httpx.post(
        f"{server.url}/api/v1/auth/token", data={"username": username, "password": "nope nope"}
    )
    assert wrong.status_code == 401
    assert wrong.headers["content-type"] == "application/problem+json"


def _http_workers(serve_pid: int) -> list[int]:
    """`lorebase serve`'s forked HTTP workers: its children running its own command line."""
    own = Path(f"/proc/{serve_pid}/cmdline").read_bytes()
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(serve_pid)], capture_output=True)
    pids = [int(pid) for pid in out.stdout.split()]
    return [pid for pid in pids if Path(f"/proc/{pid}/cmdline").read_bytes() == own]


def test_plain_serve_runs_a_worker_per_core_and_kill_9_stops_them_all(
    server_factory: type[LorebaseServer],
) -> None:
    server = server_factory()
    server.start()
    assert server.process is not None
    expected = default_workers()
    deadline = time.monotonic() + 30
    while "Lorebase is running" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    plural = "s" if expected > 1 else ""
    assert f"Lorebase is running ({expected} HTTP worker{plural})" in server.log()
    workers = _http_workers(server.process.pid)
    assert len(workers) == (expected if expected > 1 else 0)
    with httpx.Client() as http:
        statuses = {http.get(server.url + "/api/v1/health").status_code for _ in range(20)}
    assert statuses == {200}

    server.kill()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")], "orphaned workers"
    with socket.socket() as sock:  # nobody holds the port any more
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", server.port))


def test_second_serve_on_same_data_dir_refuses(served: LorebaseServer) -> None:
    first = served
    second = subprocess.run(
        [LOREBASE, "serve", "--port", "1"],
        env=first.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert "is in use by" in second.stderr
    assert httpx.get(first.url + "/api/v1/health").status_code == 200


def test_external_database_without_secret_key_refuses(
    server_factory: type[LorebaseServer], tmp_path: Path
) -> None:
    server = server_factory(env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    result = subprocess.run(
        [LOREBASE, "serve", "--port", "1"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "LOREBASE_SECRET_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


NEWCOMER_DOC = b"""# Team handbook

## Holidays

Every employee gets twenty-eight days of paid leave per year. Unused days carry over until March.

## Deployments

Production deploys happen on Tuesdays and Thursdays after the nine o'clock stand-up.

## Expenses

Receipts must be uploaded within thirty days; travel is reimbursed at economy fares.
"""


def _ask(base: str, headers: dict[str, str], project_id: str) -> dict[str, object]:
    response = httpx.post(
        f"{base}/api/v1/rag/query",
        json={"project_id": project_id, "query_text": "how much vacation time do staff get?"},
        headers=headers,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_newcomer_flow_upload_then_ask_in_own_words(served: LorebaseServer) -> None:
    """The README's promise: register, log in, create a project, upload Markdown, ask."""
    server = served
    headers = _register_and_login(server.url, f"newcomer-{uuid.uuid4().hex[:6]}")
    project = httpx.post(f"{server.url}/api/v1/projects", json={"name": "hb"}, headers=headers)
    project_id = project.json()["id"]
    upload = httpx.post(
        f"{server.url}/api/v1/knowledge/upload",
        data={"project_id": project_id},
        files={"file": ("handbook.md", NEWCOMER_DOC, "text/markdown")},
        headers=headers,
        timeout=60,
    )
    assert upload.status_code == 202, upload.text
    job_id = upload.json()["job_id"]
    deadline = time.monotonic() + 120
    with httpx.Client(headers=headers) as http:
        while True:
            job = http.get(f"{server.url}/api/v1/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "cancelled") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert job["status"] == "succeeded", job

    answer = _ask(server.url, headers, project_id)
    top = answer["results"][0]  # type: ignore[index]
    assert "twenty-eight days" in top["chunk_text"]

    server.stop()
    server.start()
    again = _ask(server.url, headers, project_id)
    assert "twenty-eight days" in again["results"][0]["chunk_text"]  # type: ignore[index]
