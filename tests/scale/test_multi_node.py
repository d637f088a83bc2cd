"""Many processes on one external PostgreSQL and one Redis, as a production install runs them:
2 API nodes (`serve --no-worker`) and 3 job workers. Uploads, a crawl and a git source spread
over both nodes; a worker killed with SIGKILL mid-job; every job succeeds exactly once; rate
limits and the answer cache hold across nodes; an API node stopped with SIGTERM while clients
query drains its in-flight requests and the other node never fails one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import LOREBASE, LorebaseServer
from tests.loopback_site import LoopbackSite
from tests.pgcluster import TcpPostgres

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

# Enough to keep the three workers busy well past the kill (a job takes a fraction of a second);
# every one of them is checked (exactly once, exact chunk counts).
UPLOADS = 60
LEASE_SECONDS = 6.0
PASSWORD = "a long enough password"
FINISHED = ("succeeded", "failed", "cancelled")


class Worker:
    """One `lorebase worker` process."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [LOREBASE, "worker", "--concurrency", "1"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("cluster")
    pg = TcpPostgres(root / "pg").init().start()
    database_url = pg.create_database("lorebase")
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": "redis://127.0.0.1:6379/12",
        "REDIS_PREFIX": f"lorebase-scale-{uuid.uuid4().hex[:8]}:",
        "LOREBASE_SECRET_KEY": "scale-test-secret-" + "x" * 40,
        "JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "CRAWL_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
        "CRAWL_DELAY_SECONDS": "0",
        "GIT_ALLOW_FILE_URLS": "true",
        "RATE_LIMIT_QUERY": "40/minute",
        "RATE_LIMIT_INGEST": "100000/minute",
        "RATE_LIMIT_AUTH": "100000/minute",
        "RATE_LIMIT_AUTH_IP": "100000/minute",
        "RATE_LIMIT_REGISTER": "100000/minute",
        "RATE_LIMIT_REFRESH": "100000/minute",
        "EMBEDDING_THREADS": "1",
        "LOG_FORMAT": "json",
    }
    nodes = [LorebaseServer(root / f"node{i}", env=env, args=["--no-worker"]) for i in range(2)]
    for node in nodes:
        node.data_dir.mkdir()
    # The first node migrates; the second finds the schema in place.
    nodes[0].start(timeout=180)
    nodes[1].start(timeout=180)
    workers = []
    for i in range(3):
        data_dir = root / f"worker{i}"
        data_dir.mkdir()
        worker_env = {**nodes[0].env, "LOREBASE_DATA_DIR": str(data_dir)}
        workers.append(Worker(worker_env, root / f"worker{i}.log"))
    try:
        yield {"pg": pg, "url": database_url, "nodes": nodes, "workers": workers, "root": root}
    finally:
        for worker in workers:
            worker.stop()
        for node in nodes:
            if node.process is not None:
                node.stop()
        pg.remove()


def _login(base: str, username: str, http: httpx.Client | None = None) -> dict[str, str]:
    user = {"username": username, "password": PASSWORD}
    with contextlib.ExitStack() as stack:
        # Production password hashing: seconds on a loaded machine, not httpx's default 5.
        http = http or stack.enter_context(httpx.Client(timeout=60))
        assert http.post(f"{base}/api/v1/auth/register", json=user).status_code == 201
        token = http.post(f"{base}/api/v1/auth/token", data=user).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _document(i: int) -> bytes:
    lines = [f"# Station {i} log", ""]
    for j in range(6):
        lines.append(
            f"Station {i} reading {j}: valve {i * 7 + j} holds pressure {100 + i + j} kPa "
            f"while pump {j} of station {i} idles at {i % 9} hundred turns."
        )
    return "\n".join(lines).encode()


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


def _wait_jobs(
    base: str, headers: dict[str, str], project_id: str, job_ids: list[str], timeout: float
) -> list[Any]:
    """Every job of `job_ids`, once all are finished. While the project has jobs queued or
    running, two counts are polled (not every job at every turn: that polling cost the API
    nodes more CPU than the jobs did); then each job is read."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
        while True:
            busy = sum(
                http.get(
                    "/api/v1/jobs", params={"project_id": project_id, "status": s, "limit": 1}
                ).json()["total"]
                for s in ("queued", "running")
            )
            unfinished: list[Any] = [f"{busy} jobs queued or running"]
            if busy == 0:
                jobs = [http.get(f"/api/v1/jobs/{job_id}").json() for job_id in job_ids]
                unfinished = [j for j in jobs if j["status"] not in FINISHED]
                if not unfinished:
                    return jobs
            assert time.monotonic() < deadline, unfinished
            time.sleep(0.5)


def _doing(conn: psycopg.Connection[Any]) -> list[tuple[int, int | None]]:
    """The queue's jobs that a worker holds and has started: the job it runs is marked
    running (its attempt counted), not just fetched from the queue."""
    rows = conn.execute(
        "SELECT q.id, q.worker_id FROM procrastinate_jobs q "
        "JOIN jobs j ON j.id::text = q.args->>'job_id' "
        "WHERE q.status = 'doing' AND j.status = 'running'"
    ).fetchall()
    return [(int(r[0]), r[1]) for r in rows]


def test_uploads_crawl_and_git_over_two_nodes_and_three_workers_one_killed(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    nodes: list[LorebaseServer] = cluster["nodes"]
    headers = _login(nodes[0].url, "scale-owner")
    project = httpx.post(
        f"{nodes[1].url}/api/v1/projects", json={"name": "scale"}, headers=headers
    ).json()
    site = LoopbackSite()
    links = "".join(f'<a href="/p{i}">p{i}</a>' for i in range(3))
    site.page("/", f"<h1>Index</h1><p>The crawl start page lists pages.</p>{links}")
    for i in range(3):
        site.page(f"/p{i}", f"<h1>Page {i}</h1><p>Crawled page {i} talks about gears {i}.</p>")
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for name in ("a", "b"):
        (repo / f"{name}.md").write_text(f"# {name}\n\nThe {name} module turns widgets.\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "first")

    def upload(http: httpx.Client, i: int) -> str:
        node = nodes[i % 2]
        response = http.post(
            f"{node.url}/api/v1/knowledge/upload",
            data={"project_id": project["id"]},
            files={"file": (f"station-{i}.md", _document(i), "text/markdown")},
            headers=headers,
            timeout=60,
        )
        assert response.status_code == 202, response.text
        return str(response.json()["job_id"])

    # One client for the pool's threads (httpx clients may be shared between threads; each
    # `httpx.post` would build its own, about 30 CPU ms).
    with httpx.Client() as http, ThreadPoolExecutor(8) as pool:
        job_ids = list(pool.map(lambda i: upload(http, i), range(UPLOADS)))
    crawl = httpx.post(
        f"{nodes[0].url}/api/v1/knowledge/crawl",
        json={"project_id": project["id"], "url": site.base + "/", "max_depth": 1},
        headers=headers,
    )
    assert crawl.status_code == 202, crawl.text
    git = httpx.post(
        f"{nodes[1].url}/api/v1/knowledge/git",
        json={"project_id": project["id"], "url": repo.as_uri()},
        headers=headers,
    )
    assert git.status_code == 202, git.text
    job_ids += [crawl.json()["job_id"], git.json()["job_id"]]

    # Every worker busy (concurrency 1 each): the first one certainly runs a job. Kill it.
    deadline = time.monotonic() + 180
    # One connection for the polling (autocommit: each query sees the queue as it is now).
    with psycopg.connect(cluster["url"], autocommit=True) as queue:
        while len(_doing(queue)) < 3:
            assert time.monotonic() < deadline, "the three workers never all ran a job"
            time.sleep(0.05)
        before = dict(_doing(queue))
        killed_at = time.monotonic()
        cluster["workers"][0].process.kill()
        taken_over_after = _time_to_requeue(queue, before, timeout=LEASE_SECONDS * 3)

    jobs = _wait_jobs(nodes[0].url, headers, project["id"], job_ids, timeout=600)
    site.stop()
    failed = [job for job in jobs if job["status"] != "succeeded"]
    assert not failed, failed
    assert any(job["attempts"] >= 2 for job in jobs), "the killed worker's job ran again"
    # A stalled job moves on within 1.5 leases (lease + one reaper period of lease / 2).
    assert taken_over_after - killed_at <= LEASE_SECONDS * 1.5 + 2.0

    with psycopg.connect(cluster["url"]) as conn:
        versions = conn.execute(
            "SELECT count(*), count(DISTINCT document_id) FROM document_versions v "
            "JOIN documents d ON d.id = v.document_id WHERE d.project_id = %s",
            (project["id"],),
        ).fetchone()
        items = conn.execute(
            "SELECT count(*), count(DISTINCT (document_id, chunk_index)) FROM knowledge_items "
            "WHERE project_id = %s",
            (project["id"],),
        ).fetchone()
    assert versions is not None
    assert versions[0] == versions[1], "no duplicate versions"
    assert versions[0] == UPLOADS + 4 + 2, "the uploads, 4 crawled pages, 2 git files"
    expected_chunks = sum(int(job["result"]["chunks"]) for job in jobs[:UPLOADS])
    upload_items = _upload_chunk_count(cluster["url"], project["id"])
    assert upload_items == expected_chunks, "chunk counts exact"
    assert items is not None
    assert items[0] == items[1], "no duplicate chunks"


def _time_to_requeue(
    conn: psycopg.Connection[Any], before: dict[int, int | None], timeout: float
) -> float:
    """When the killed worker's job left it (back to the queue or to another worker)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = conn.execute(
            "SELECT id, status, worker_id FROM procrastinate_jobs WHERE id = ANY(%s)",
            (list(before),),
        ).fetchall()
        for job_id, status, worker_id in rows:
            if status == "todo" or (status == "doing" and worker_id != before[job_id]):
                return time.monotonic()
        time.sleep(0.1)
    raise AssertionError("no job of the killed worker was taken over")


def _upload_chunk_count(url: str, project_id: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM knowledge_items i JOIN documents d ON d.id = i.document_id "
            "WHERE d.project_id = %s AND d.name LIKE 'station-%%'",
            (project_id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_rate_limits_and_the_answer_cache_hold_across_nodes(cluster: dict[str, Any]) -> None:
    nodes: list[LorebaseServer] = cluster["nodes"]
    headers = _login(nodes[0].url, f"limits-{uuid.uuid4().hex[:6]}")
    project = httpx.post(
        f"{nodes[0].url}/api/v1/projects", json={"name": "limits"}, headers=headers
    ).json()
    body = {"project_id": project["id"], "query_text": "which valve holds pressure?"}
    first = httpx.post(f"{nodes[0].url}/api/v1/rag/query", json=body, headers=headers)
    second = httpx.post(f"{nodes[1].url}/api/v1/rag/query", json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["cached"] is False
    assert second.json()["cached"] is True, "the answer cached by node 0 serves node 1"

    # Sent at once, so the bucket cannot refill (40 a minute) while they are answered.
    def ask(http: httpx.Client, i: int) -> int:
        query = {**body, "query_text": f"question number {i}"}
        url = f"{nodes[i % 2].url}/api/v1/rag/query"
        return http.post(url, json=query, headers=headers, timeout=60).status_code

    # One client for the pool's threads (each `httpx.post` would build its own: ~30 CPU ms).
    with httpx.Client() as http, ThreadPoolExecutor(22) as pool:
        statuses = list(pool.map(lambda i: ask(http, i), range(90)))
    # 92 queries against a bucket of 40 that refills 0.67 a second: per-node buckets would let
    # every one through; one shared bucket refuses at least 20 even if this takes 45 s.
    assert statuses.count(429) >= 20, statuses
    assert set(statuses) <= {200, 429}


def test_sigterm_drains_one_node_while_the_other_keeps_answering(
    cluster: dict[str, Any],
) -> None:
    nodes: list[LorebaseServer] = cluster["nodes"]
    project_owner = _login(nodes[0].url, f"drain-{uuid.uuid4().hex[:6]}")
    project = httpx.post(
        f"{nodes[0].url}/api/v1/projects", json={"name": "drain"}, headers=project_owner
    ).json()
    # 20 clients, each its own user (the query limit is per user), half on each node.
    clients = []
    with httpx.Client(timeout=60) as http:
        for i in range(20):
            name = f"c{i}-{uuid.uuid4().hex[:6]}"
            user = _login(nodes[0].url, name, http)
            me = http.get(f"{nodes[0].url}/api/v1/auth/me", headers=user).json()
            member = http.put(
                f"{nodes[0].url}/api/v1/projects/{project['id']}/members/{me['id']}",
                json={"role": "viewer"},
                headers=project_owner,
            )
            assert member.status_code in (200, 201), member.text
            clients.append((nodes[i % 2], user))
    stop = threading.Event()
    outcomes: dict[int, list[str]] = {0: [], 1: []}
    lock = threading.Lock()

    def run(index: int) -> None:
        # Each client its own httpx client (built once, not per request: ~30 CPU ms each).
        with httpx.Client() as http:
            drive(http, index)

    def drive(http: httpx.Client, index: int) -> None:
        node, user = clients[index]
        which = index % 2
        n = 0
        while not stop.is_set() and n < 30:
            n += 1
            query = {"project_id": project["id"], "query_text": f"drain {index} {n}"}
            try:
                # A fresh connection per request (`Connection: close`): a refused connection
                # is "never in flight".
                response = http.post(
                    f"{node.url}/api/v1/rag/query",
                    json=query,
                    headers={**user, "Connection": "close"},
                    timeout=30,
                )
                outcome = str(response.status_code)
            except httpx.ConnectError:
                outcome = "refused"
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # Reset or closed with no response: a connection still in the listen backlog
                # when the node stopped accepting (the kernel resets it; the request never
                # reached the application). A load balancer retries these on another node.
                outcome = "reset"
            except httpx.HTTPError as exc:  # a timeout or a cut response: what a drain prevents
                outcome = f"dropped:{type(exc).__name__}"
            with lock:
                outcomes[which].append(outcome)
            time.sleep(0.05)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    code = nodes[1].stop(signal.SIGTERM, timeout=60)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert code in (0, 128 + signal.SIGTERM), nodes[1].log()
    assert outcomes[0], "the other node answered"
    assert set(outcomes[0]) == {"200"}, outcomes[0]
    stopping = set(outcomes[1])
    assert stopping <= {"200", "refused", "reset"}, outcomes[1]
    assert "200" in stopping
    nodes[1].start(timeout=180)  # leave the cluster as the other tests found it
