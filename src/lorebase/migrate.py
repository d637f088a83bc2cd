"""Run Alembic migrations (the only way the schema changes)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from lorebase.db import sqlalchemy_url

_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(conninfo: str) -> Config:
    config = Config(str(_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(_ROOT / "migrations"))
    config.attributes["url"] = sqlalchemy_url(conninfo)
    return config


def upgrade_database(conninfo: str, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest)."""
    command.upgrade(alembic_config(conninfo), revision)
