"""The HTTP worker processes of `lorebase serve --workers N`: their app factory.

uvicorn spawns its workers; killed with `kill -9`, its parent would leave them serving (and
running jobs) as orphans that hold the port. Each worker therefore asks Linux to kill it when
the parent dies (`PR_SET_PDEATHSIG`), so `kill -9` of `lorebase serve` stops it all, as it did
with one process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

from fastapi import FastAPI

from lorebase.main import create_app

PARENT_ENV = "LOREBASE_SERVE_PID"
_PR_SET_PDEATHSIG = 1


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
