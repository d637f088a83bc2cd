"""Readable logs on a terminal, JSON otherwise (LOG_FORMAT forces either); the banner."""

from __future__ import annotations

import io
import logging

from lorebase.banner import ADMIN_COMMAND, banner, base_url
from lorebase.logs import TextFormatter, wants_text


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_follows_the_terminal_unless_forced() -> None:
    assert wants_text(None, _Tty())
    assert not wants_text(None, io.StringIO())
    assert not wants_text("json", _Tty())
    assert wants_text("text", io.StringIO())


def test_text_line_carries_extras_but_not_uvicorn_colour_copy() -> None:
    record = logging.LogRecord("lorebase.x", logging.INFO, __file__, 1, "job done", None, None)
    record.job_id = "j1"
    record.color_message = "\x1b[1mjob done\x1b[0m"
    record.request_id = "r1"
    line = TextFormatter().format(record)
    assert "INFO" in line
    assert "lorebase.x: job done" in line
    assert "job_id=j1" in line
    assert "request_id=r1" in line
    assert "\x1b" not in line
    assert "\n" not in line


def test_banner_names_console_docs_and_admin_command() -> None:
    url = base_url("0.0.0.0", 8000)  # noqa: S104 - what a wildcard bind is shown as
    assert url == "http://127.0.0.1:8000"
    text = banner(url)
    assert "http://127.0.0.1:8000/\n" in text
    assert "http://127.0.0.1:8000/api/docs" in text
    assert ADMIN_COMMAND in text
    assert "(1 HTTP worker)" in text
    assert "(4 HTTP workers)" in banner(url, 4)
    assert base_url("::1", 9) == "http://[::1]:9"
