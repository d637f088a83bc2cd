"""`--profile`: py-spy records one server worker during each load scenario (py-spy is a
development tool, not a dependency: `pip install py-spy` into the environment first)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from lorebase.bench.server import process_tree

_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def worker_pids(serve_pid: int) -> list[int]:
    """The HTTP workers of `lorebase serve`: its forked children (same command line), uvicorn's
    spawned interpreters, or serve itself with one worker."""
    workers = []
    try:
        own = Path(f"/proc/{serve_pid}/cmdline").read_bytes()
    except OSError:
        return [serve_pid]
    for pid in process_tree([serve_pid]):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        spawned = b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline
        if pid != serve_pid and (spawned or cmdline == own):
            workers.append(pid)
    return workers or [serve_pid]


def start(pid: int, output: Path, *, duration: float, rate: int = 100) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` for `duration` seconds into `output` (collapsed stacks)."""
    executable = py_spy()
    if executable is None:
        raise RuntimeError("--profile needs py-spy: pip install py-spy")
    output.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            executable,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(duration))),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarize(path: Path, *, top: int = 25) -> dict[str, Any]:
    """Share of samples per function: inclusive (anywhere on the stack) and self (on top)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    if total == 0:
        return {"samples": 0, "inclusive": [], "self": []}
    return {"samples": total, "inclusive": share(inclusive), "self": share(own)}
