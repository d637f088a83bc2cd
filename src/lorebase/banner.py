"""The few lines `lorebase serve` prints once it answers: where to go next."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

import httpx

ADMIN_COMMAND = "lorebase user create NAME --admin"


def base_url(host: str, port: int) -> str:
    """The URL a person on this machine opens (a wildcard bind is reached via loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)  # noqa: S104
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def banner(url: str, workers: int = 1) -> str:
    plural = "s" if workers != 1 else ""
    return (
        "\n"
        f"  Lorebase is running ({workers} HTTP worker{plural}).\n"
        f"    Console   {url}/\n"
        f"    API docs  {url}/api/docs\n"
        f"    First admin:  {ADMIN_COMMAND}\n"
    )


def _wait_and_print(url: str, out: TextIO, timeout: float, workers: int) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/api/v1/health", timeout=2.0).status_code == 200:
                out.write(banner(url, workers) + "\n")
                out.flush()
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)


def print_banner_when_up(
    host: str, port: int, *, workers: int = 1, timeout: float = 300.0
) -> threading.Thread:
    """Print the banner on stdout as soon as the server answers its health check."""
    thread = threading.Thread(
        target=_wait_and_print,
        args=(base_url(host, port), sys.stdout, timeout, workers),
        name="lorebase-banner",
        daemon=True,
    )
    thread.start()
    return thread
