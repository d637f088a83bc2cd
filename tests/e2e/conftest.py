"""Run `lorebase serve` as a user would: a subprocess on a free port with its own data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

LOREBASE = str(Path(sys.executable).with_name("lorebase"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LorebaseServer:
    """One `lorebase serve` process; `start()` again after `stop()`/`kill()` to restart."""

    def __init__(
        self, data_dir: Path, *, env: dict[str, str] | None = None, args: list[str] | None = None
    ):
        self.data_dir = data_dir
        self.port = free_port()
        self.args = args or []
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DATABASE_URL", "REDIS_URL", "LOREBASE_", "LLM_", "EMBEDDING_"))
        }
        self.env.update({"LOREBASE_DATA_DIR": str(data_dir), "ACCESS_LOG": "false"})
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"serve-{data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout: float = 90.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [LOREBASE, "serve", "--port", str(self.port), *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir.parent,
            )
        deadline = time.monotonic() + timeout
        # One client for the polling: each `httpx.get` builds a client (and its TLS context),
        # about 30 CPU ms, five times a second for as long as the server takes to start.
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"lorebase serve exited early:\n{self.log()}")
                try:
                    if http.get(self.url + "/api/v1/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise RuntimeError(f"lorebase serve did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        self.process = None
        return code

    def kill(self) -> None:
        """kill -9: no shutdown hooks run."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None


def service_pids(data_dir: Path) -> list[int]:
    """PIDs of embedded postgres / redis processes serving `data_dir`."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True
    )
    return [
        int(line.split()[0])
        for line in out.stdout.splitlines()[1:]
        if str(data_dir.resolve()) in line and ("postgres" in line or "redis-server" in line)
    ]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[LorebaseServer]]:
    started: list[LorebaseServer] = []

    class _Server(LorebaseServer):
        def __init__(self, data_dir: Path | None = None, **kwargs: object) -> None:
            super().__init__(data_dir or tmp_path / "data", **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield _Server
    for server in started:
        if server.process is not None:
            server.stop()
    for server in started:
        for pid in service_pids(server.data_dir):
            os.kill(pid, signal.SIGKILL)
