"""The embedded PostgreSQL runs with our settings from its first start on, and a changed
setting is applied at the next start."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr, ValidationError

from lorebase.embedded import start_services
from lorebase.settings import Settings
from tests.conftest import TEST_REDIS_URL


def _shared_buffers(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW shared_buffers").fetchone()
    assert row is not None
    return str(row[0])


def _settings(data_dir: Path, shared_buffers: str) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        lorebase_data_dir=data_dir,
        redis_url=SecretStr(TEST_REDIS_URL),
        embedded_postgres_shared_buffers=shared_buffers,
    )


def test_shared_buffers_apply_from_the_first_start_and_follow_the_setting(
    tmp_path: Path,
) -> None:
    first = start_services(_settings(tmp_path, "160MB"))
    try:
        assert _shared_buffers(first.database_url) == "160MB"
    finally:
        first.stop()
    again = start_services(_settings(tmp_path, "192MB"))
    try:
        assert _shared_buffers(again.database_url) == "192MB"
        conf = (tmp_path / "postgres" / "postgresql.conf").read_text()
        assert conf.count("include_if_exists = 'lorebase.conf'") == 1
    finally:
        again.stop()


def test_a_malformed_shared_buffers_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="embedded_postgres_shared_buffers"):
        _settings(tmp_path, "1 gig")
    assert not (tmp_path / "postgres").exists()
