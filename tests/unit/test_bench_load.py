"""The bench load generators against a loopback HTTP/1.1 server that records what it got."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lorebase.bench.load import LoadSpec, Request, run_load


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real server
    seen: list[tuple[str, str, str, bytes]] = []
    lock = threading.Lock()

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.lock:
            self.seen.append((self.command, self.path, self.headers.get("authorization", ""), body))
        status = 200 if self.path.startswith("/ok") else 404
        payload = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _spec(url: str) -> LoadSpec:
    return LoadSpec(
        base_url=url,
        requests=[
            Request("GET", "/ok/1"),
            Request("POST", "/missing", b'{"q": "a b"}', "application/json"),
        ],
        headers={"Authorization": "Bearer t0ken"},
        duration=1.0,
        connections=4,
    )


def _check(result_requests: int, non_2xx: int, socket_errors: int) -> None:
    seen = list(_Handler.seen)
    assert result_requests > 10
    assert socket_errors == 0
    # Requests alternate between the two entries, so about half are 404s.
    assert 0.3 < non_2xx / result_requests < 0.7
    assert {auth for _, _, auth, _ in seen} == {"Bearer t0ken"}
    posts = [body for method, path, _, body in seen if method == "POST"]
    assert posts
    assert set(posts) == {b'{"q": "a b"}'}
    assert {path for method, path, _, _ in seen if method == "GET"} == {"/ok/1"}


def test_python_generator_counts_statuses_and_sends_bodies(server: str) -> None:
    result = run_load(_spec(server), generator="python", wrk_path=None)
    assert result.generator == "python"
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    _check(result.requests, result.non_2xx, result.socket_errors)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_generator_counts_statuses_and_sends_bodies(server: str) -> None:
    result = run_load(_spec(server), generator="wrk", wrk_path=shutil.which("wrk"))
    assert result.generator == "wrk"
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    _check(result.requests, result.non_2xx, result.socket_errors)
