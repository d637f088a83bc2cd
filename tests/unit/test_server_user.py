"""The system user PostgreSQL runs as when we are root: made once, under a lock, so parallel
processes agree on its uid (racing `useradd` calls here gave two)."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

import pytest

from lorebase import embedded

_RACE = """
import sys
from lorebase import embedded
embedded.SERVER_USER = sys.argv[1]
print(embedded.ensure_server_user()[0])
"""


def test_not_root_means_no_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "SERVER_USER", None)
    assert embedded.ensure_server_user() is None


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a system user needs root")
def test_processes_racing_to_create_the_user_agree_on_its_uid() -> None:
    name = f"lbtest{os.getpid()}"
    try:
        racers = [
            subprocess.Popen(
                [sys.executable, "-W", "ignore", "-c", _RACE, name],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(6)
        ]
        uids = {int(racer.communicate(timeout=60)[0]) for racer in racers}
        assert uids == {pwd.getpwnam(name).pw_uid}
    finally:
        subprocess.run(["userdel", "-r", name], capture_output=True, check=False)
