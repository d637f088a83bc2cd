"""JSON logs carrying the current request id."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from pythonjsonlogger.orjson import OrjsonFormatter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_REDACT = ("password", "token", "secret", "authorization", "api_key", "key_hash")
# Attributes every LogRecord has; only the others (a call's `extra`) can carry a secret.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
}


@lru_cache(maxsize=4096)
def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _REDACT)


class _RequestIdFilter(logging.Filter):
    # Runs for every record, the access log line of every request included: it looks only at
    # the `extra` names and remembers its verdict per name (py-spy, bench/RESULTS.md).
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        attributes = record.__dict__
        for name in attributes.keys() - _STANDARD:
            if _is_secret_name(name):
                attributes[name] = "[redacted]"
        return True


def configure_logging(level: str = "INFO") -> None:
    """One JSON line per record on stderr; idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    # orjson encodes a record in about half the time of the stdlib json encoder.
    formatter: Any = OrjsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True
