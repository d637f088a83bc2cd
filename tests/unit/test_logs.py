"""JSON log lines: one object per record, the request id attached, secret-named fields redacted."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator

import pytest

from lorebase.logs import configure_logging, request_id_var


@pytest.fixture
def stderr(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    saved = logging.getLogger().handlers[:]
    configure_logging("INFO")
    yield buffer
    logging.getLogger().handlers = saved


def test_record_is_one_json_line_with_request_id(stderr: io.StringIO) -> None:
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("lorebase.test").info(
            "hello wörld", extra={"route": "/x/{id}", "status": 200, "doc": uuid.UUID(int=7)}
        )
    finally:
        request_id_var.reset(token)
    (line,) = stderr.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "hello wörld"
    assert record["level"] == "INFO"
    assert record["logger"] == "lorebase.test"
    assert record["request_id"] == "req-42"
    assert record["status"] == 200
    assert record["doc"] == str(uuid.UUID(int=7))
    assert "ts" in record


def test_fields_named_like_secrets_are_redacted(stderr: io.StringIO) -> None:
    extra = {
        "user_password": "hunter2",
        "Refresh_Token": "rt",
        "api_key_id": "k1",
        "authorization": "Bearer x",
        "client_secret": "s",
        "key_hash": "h",
        "username": "alice",
    }
    for _ in range(2):  # the verdict per name is cached; the second record must match
        logging.getLogger("lorebase.test").warning("login", extra=extra)
    for line in stderr.getvalue().splitlines():
        record = json.loads(line)
        for name in extra:
            expected = "alice" if name == "username" else "[redacted]"
            assert record[name] == expected, name
        assert "hunter2" not in line
