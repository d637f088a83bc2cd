"""The `lorebase` command imports what a command runs in that command's body: every process
(a `user create`, a `worker`, the `mcp` stdio server, a `bench`) pays only for its own. The
option lists named in the CLI match the modules they stand for."""

from __future__ import annotations

import subprocess
import sys

from lorebase.bench.scenarios import SCENARIOS
from lorebase.cli.data import EVAL_MODES
from lorebase.cli.ops import BENCH_SCENARIOS
from lorebase.evaluation.runner import MODES

# What none of the commands needs merely to be defined (each is seconds of CPU per process).
HEAVY = (
    "mcp",
    "alembic",
    "sqlalchemy",
    "uvicorn",
    "fastapi",
    "procrastinate",
    "onnxruntime",
    "lorebase.main",
    "lorebase.api",
    "lorebase.mcp",
    "lorebase.bench",
    "lorebase.evaluation",
    "lorebase.context",
)


def test_importing_the_cli_loads_no_command_body() -> None:
    probe = "import sys, lorebase.cli; print('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = out.stdout.split()
    assert "lorebase.cli.ops" in loaded
    assert "lorebase.cli.data" in loaded
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []


def test_the_named_scenarios_and_modes_are_the_real_ones() -> None:
    assert tuple(SCENARIOS) == BENCH_SCENARIOS
    assert tuple(MODES) == EVAL_MODES
