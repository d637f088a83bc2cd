"""`lorebase serve` as a subprocess with its own data dir, and the memory of its process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import httpx

# Variables of the caller's environment that would point the server elsewhere.
FOREIGN_ENV = ("DATABASE_URL", "REDIS_URL", "LOREBASE_", "LLM_", "EMBEDDING_", "RATE_LIMIT_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lorebase_executable() -> str:
    """The `lorebase` script installed beside this interpreter (a venv's bin/)."""
    candidate = Path(sys.executable).with_name("lorebase")
    return str(candidate) if candidate.exists() else "lorebase"


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process tree: plain RSS summed (double-counts shared pages such as
    PostgreSQL's shared buffers) and PSS summed (shared pages split between their users)."""

    rss_mb: float
    pss_mb: float
    processes: int
    pss_mb_by_process: dict[str, float] = field(default_factory=dict)


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
        fields = stat[stat.rfind(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(roots: list[int]) -> list[int]:
    """`roots` and all their descendants that are alive now."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    seen: list[int] = []
    stack = [pid for pid in roots if pid in parents]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(children.get(pid, []))
    return seen


def _kb_fields(path: Path, names: tuple[str, ...]) -> dict[str, int]:
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in names:
                values[key] = int(rest.split()[0])
    return values


def _kind(pid: int) -> str:
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "other"
    if comm.startswith(("postgres", "postmaster")):
        return "postgres"
    if comm.startswith("redis"):
        return "redis"
    return "python" if comm.startswith(("python", "lorebase")) else "other"


def tree_cpu_seconds(roots: list[int]) -> dict[str, float]:
    """User + system CPU seconds consumed so far by `roots` and their live descendants, by
    kind of process (python, postgres, redis, other)."""
    ticks: dict[str, int] = {}
    for pid in process_tree(roots):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        kind = _kind(pid)
        ticks[kind] = ticks.get(kind, 0) + int(fields[11]) + int(fields[12])  # utime, stime
    hz = os.sysconf("SC_CLK_TCK")
    return {kind: n / hz for kind, n in ticks.items()}


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds spent between two `tree_cpu_seconds` readings, by kind and in total."""
    kinds = set(before) | set(after)
    delta = {k: round(max(0.0, after.get(k, 0.0) - before.get(k, 0.0)), 2) for k in kinds}
    delta["total"] = round(sum(delta.values()), 2)
    return delta


def tree_memory(roots: list[int]) -> Memory:
    """RSS and PSS (MiB) summed over `roots` and their descendants; PSS also by process kind."""
    rss = pss = 0
    by_kind: dict[str, int] = {}
    pids = process_tree(roots)
    for pid in pids:
        rss += _kb_fields(Path(f"/proc/{pid}/status"), ("VmRSS",)).get("VmRSS", 0)
        own = _kb_fields(Path(f"/proc/{pid}/smaps_rollup"), ("Pss",)).get("Pss", 0)
        pss += own
        kind = _kind(pid)
        by_kind[kind] = by_kind.get(kind, 0) + own
    return Memory(
        rss_mb=round(rss / 1024, 1),
        pss_mb=round(pss / 1024, 1),
        processes=len(pids),
        pss_mb_by_process={kind: round(kb / 1024, 1) for kind, kb in sorted(by_kind.items())},
    )


class Ticker:
    """Calls `tick` every `interval` seconds in a daemon thread while the `with` block runs."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class MemorySampler(Ticker):
    """Samples a process tree's memory in a thread; `peak` is the largest PSS seen."""

    def __init__(self, roots: list[int], *, interval: float = 1.0) -> None:
        super().__init__(interval)
        self.roots = roots
        self.peak: Memory | None = None

    def tick(self) -> None:
        sample = tree_memory(self.roots)
        if self.peak is None or sample.pss_mb > self.peak.pss_mb:
            self.peak = sample


def postmaster(pgdata: Path) -> tuple[int, str] | None:
    """(pid, connection URI) of the embedded PostgreSQL serving `pgdata`, if it runs."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    pid, port, socket_dir = int(lines[0]), lines[3].strip(), lines[4].strip()
    return pid, f"postgresql://postgres@/postgres?host={socket_dir}&port={port}"


class ServeProcess:
    """One `lorebase serve --workers N` on a free port, logging to a file."""

    def __init__(
        self, data_dir: Path, *, workers: int, log_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.port = free_port()
        self.log_path = log_path
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
        self.env["LOREBASE_DATA_DIR"] = str(data_dir)
        self.env.update(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        found = postmaster(self.data_dir / "postgres")
        if found is None:
            raise RuntimeError("embedded PostgreSQL is not running")
        return found[1]

    def roots(self) -> list[int]:
        """The serve process and the embedded PostgreSQL postmaster (pg_ctl detaches it)."""
        roots = [self.process.pid] if self.process is not None else []
        found = postmaster(self.data_dir / "postgres")
        if found is not None:
            roots.append(found[0])
        return roots

    def memory(self) -> Memory:
        return tree_memory(self.roots())

    def cpu_seconds(self) -> dict[str, float]:
        return tree_cpu_seconds(self.roots())

    def start(self, *, timeout: float = 600.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    lorebase_executable(),
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir.parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"lorebase serve exited early; see {self.log_path}")
            # Every worker must have finished its lifespan (model warm-up), not just the first.
            if self._started_workers(offset) >= self.workers:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(self.url + "/api/v1/health", timeout=2.0).status_code == 200:
                        return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"lorebase serve did not become healthy; see {self.log_path}")

    def _started_workers(self, offset: int) -> int:
        with self.log_path.open("rb") as log:
            log.seek(offset)
            return log.read().count(b"Application startup complete")

    def stop(self, timeout: float = 60.0) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        self._stop_leftovers()

    def _stop_leftovers(self) -> None:
        """Stop this data dir's embedded PostgreSQL / Redis if serve died without doing so."""
        pids: list[tuple[int, signal.Signals]] = []
        found = postmaster(self.data_dir / "postgres")
        if found is not None:
            pids.append((found[0], signal.SIGINT))  # PostgreSQL's "fast" shutdown
        with contextlib.suppress(OSError, ValueError):
            pids.append((int((self.data_dir / "redis" / "redis.pid").read_text()), signal.SIGTERM))
        # A pid file may be stale and its pid reused: only signal a process whose working
        # directory is this data dir's (PostgreSQL and Redis both chdir into theirs).
        pids = [(pid, sig) for pid, sig in pids if self._runs_in_data_dir(pid)]
        for pid, sig in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 20
        for pid, _ in pids:
            while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
                time.sleep(0.1)

    def _runs_in_data_dir(self, pid: int) -> bool:
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:
            return False
        return cwd.is_relative_to(self.data_dir.resolve())
