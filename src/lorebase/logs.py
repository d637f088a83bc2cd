"""Logs carrying the current request id: JSON lines, or readable text on a terminal."""

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
    "color_message",  # uvicorn's ANSI copy of the message
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


class TextFormatter(logging.Formatter):
    """One readable line per record: time, level, logger, message, then `key=value` extras."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{name}={value}"
            for name, value in record.__dict__.items()
            if name not in _STANDARD and value is not None
        ]
        request_id = getattr(record, "request_id", None)
        if request_id:
            extras.append(f"request_id={request_id}")
        if not extras:
            return line
        head, newline, trace = line.partition("\n")
        return f"{head} [{' '.join(extras)}]{newline}{trace}"


def wants_text(log_format: str | None, stream: Any = None) -> bool:
    """`text`/`json` when forced; otherwise text exactly when the log stream is a terminal."""
    if log_format is not None:
        return log_format == "text"
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def configure_logging(level: str = "INFO", log_format: str | None = None) -> None:
    """One line per record on stderr (JSON, or text on a terminal: see `wants_text`);
    idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    formatter: Any
    if wants_text(log_format, sys.stderr):
        formatter = TextFormatter()
    else:
        # orjson encodes a record in about half the time of the stdlib json encoder.
        formatter = OrjsonFormatter(
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
