"""The HTTP worker processes of `lorebase serve`: how many, and their supervisor.

A plain `lorebase serve` runs one HTTP worker per core (at most `MAX_DEFAULT_WORKERS`). The
workers are *forked* from the `lorebase serve` process once it has imported the application
(and before it loads any model or starts a thread), so they start in well under a second,
share the imported code copy-on-write, and find the local embedding model in the parent
(`embedding.shared`). uvicorn's own `--workers` supervisor spawns fresh interpreters and
blocks on a health-check ping of each worker before it handles a signal: on a busy machine
that made start-up and SIGTERM take tens of seconds.

Each worker asks Linux to kill it when the parent dies (`PR_SET_PDEATHSIG`), so `kill -9` of
`lorebase serve` stops it all, as it does with one process. Only the first worker runs the
in-process job worker, so ingestion runs as it does with one HTTP worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from types import FrameType
from typing import NoReturn

import uvicorn
from fastapi import FastAPI

from lorebase.main import create_app
from lorebase.settings import get_settings, usable_cores

PARENT_ENV = "LOREBASE_SERVE_PID"
# Each worker holds up to DATABASE_POOL_MAX (20) connections: 4 of them and the job worker fit
# PostgreSQL's default max_connections of 100.
MAX_DEFAULT_WORKERS = 4
STARTUP_FAILURE = 3  # uvicorn's exit code for a lifespan that failed
STOP_TIMEOUT = 60.0  # seconds the workers get to drain after SIGTERM before SIGKILL
_PR_SET_PDEATHSIG = 1
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

log = logging.getLogger("lorebase.serve")


def default_workers() -> int:
    """HTTP workers when `--workers` is not given: the cores this process may use, ≤ 4."""
    return min(usable_cores(), MAX_DEFAULT_WORKERS)


def die_with_parent() -> None:
    """Have this process SIGKILLed when `lorebase serve` (PARENT_ENV) dies (Linux only)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    # The parent may have died before prctl: then this worker was already re-parented.
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGKILL)


def create_worker_app() -> FastAPI:
    """`create_app` for a worker process of `lorebase serve`."""
    die_with_parent()
    return create_app()


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _run_child(config: uvicorn.Config, sock: socket.socket, index: int) -> NoReturn:
    """The body of a forked worker: serve until told to stop, then leave without running
    anything of the parent's (its `finally` blocks stop the embedded databases)."""
    code = 1
    try:
        for sig in _STOP_SIGNALS:
            signal.signal(sig, _exit_quietly)
        if index > 0:
            os.environ["LOREBASE_RUN_WORKER"] = "0"
        get_settings.cache_clear()
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
        code = 0 if server.started else STARTUP_FAILURE
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:
        log.exception("HTTP worker %d failed", index)
    finally:
        logging.shutdown()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


class WorkerPool:
    """`count` forked uvicorn servers sharing one listening socket; a worker that dies is
    replaced (unless its start-up failed, or workers keep dying), SIGTERM/SIGINT drain all."""

    def __init__(self, config: uvicorn.Config, count: int) -> None:
        self.config = config
        self.count = count
        self.children: dict[int, int] = {}  # pid -> worker index
        self._socket: socket.socket | None = None
        self._stop_signal = 0
        self._deaths: deque[float] = deque(maxlen=5)

    def start(self) -> None:
        """Bind the port and fork every worker (call before starting any thread)."""
        self._socket = self.config.bind_socket()
        for index in range(self.count):
            self._fork(index)

    def _fork(self, index: int) -> None:
        assert self._socket is not None
        pid = os.fork()
        if pid == 0:
            _run_child(self.config, self._socket, index)
        self.children[pid] = index

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop_signal = signum

    def run(self) -> int:
        """Supervise until a stop signal or a fatal worker failure; returns the exit code."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        code = 0
        try:
            while not self._stop_signal and code == 0:
                code = self._reap()
                time.sleep(0.2)
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 128 + self._stop_signal if self._stop_signal else code

    def _exited(self) -> list[tuple[int, int]]:
        """(pid, exit code) of the workers that have exited (only ours: the parent's other
        children, such as the embedded Redis, are reaped by their own watchers)."""
        exited = []
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: gone all the same
                done, status = pid, 0
            if done:
                exited.append((pid, os.waitstatus_to_exitcode(status)))
        return exited

    def _reap(self) -> int:
        """Replace the workers that exited; non-zero when serving must stop."""
        for pid, exit_code in self._exited():
            index = self.children.pop(pid)
            if exit_code == STARTUP_FAILURE:
                log.error("HTTP worker %d (pid %d) failed to start; stopping", index, pid)
                return 1
            now = time.monotonic()
            self._deaths.append(now)
            if len(self._deaths) == self._deaths.maxlen and now - self._deaths[0] < 60:
                log.error("HTTP workers keep dying (5 in a minute); stopping")
                return 1
            log.warning("HTTP worker %d (pid %d) exited (%d); replacing it", index, pid, exit_code)
            self._fork(index)
        return 0

    def stop(self) -> None:
        """Close the port, let every worker drain its requests, SIGKILL what hangs."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.children and time.monotonic() < deadline:
            for pid, _ in self._exited():
                self.children.pop(pid)
            time.sleep(0.05)
        for pid in self.children:
            log.warning("HTTP worker pid %d did not stop in %.0f s; killing it", pid, STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        self.children.clear()
