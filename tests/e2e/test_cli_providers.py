"""`lorebase serve` and `lorebase reembed` refuse bad provider configuration with one line,
before starting anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

LOREBASE = Path(sys.executable).parent / "lorebase"


def _cli(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    clean.update(env, LOREBASE_DATA_DIR=str(tmp_path / "data"))
    return subprocess.run(
        [str(LOREBASE), *args],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_serve_refuses_to_start_with_one_line_naming_the_missing_key(tmp_path: Path) -> None:
    result = _cli("serve", "--port", "0", tmp_path=tmp_path, LLM_PROVIDER="openai")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "lorebase: OPENAI_API_KEY is not set (needed by the openai provider; "
        "or set OPENAI_BASE_URL for a server that takes no key)"
    ]
    assert not (tmp_path / "data").exists()  # nothing was started


def test_reembed_wants_a_project_id(tmp_path: Path) -> None:
    result = _cli("reembed", "--project", "seven", tmp_path=tmp_path)
    assert result.returncode == 1
    assert "--project must be a project id" in result.stderr
