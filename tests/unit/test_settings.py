from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from lorebase import settings as settings_module
from lorebase.settings import Settings, parse_rate

ROOT = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    listed = {m.group(1).lower() for m in re.finditer(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.M)}
    missing = set(Settings.model_fields) - listed
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_parses() -> None:
    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings.embedding_provider == "local"
    assert settings.uses_embedded_database


def test_spec_names_are_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@h/db")
    monkeypatch.setenv("LLM_FALLBACKS", "openai, ollama,extractive")
    monkeypatch.setenv("CRAWL_ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8,10.0.0.0/8")
    monkeypatch.setenv("RATE_LIMIT_QUERY", "5/second")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.database_url is not None
    assert "p@h" not in repr(settings)  # secrets stay hidden in reprs and logs
    assert settings.llm_fallbacks == ["openai", "ollama", "extractive"]
    assert settings.crawl_allow_private_networks == ["127.0.0.0/8", "10.0.0.0/8"]
    assert parse_rate(settings.rate_limit_query) == (5, 1)


def test_bad_rate_limit_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RATE_LIMIT_AUTH", "lots")
    with pytest.raises(ValidationError, match="60/minute"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_job_concurrency_is_sized_to_the_cores_and_the_embedders_kind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WORKER_CONCURRENCY", raising=False)
    monkeypatch.setattr(settings_module.os, "sched_getaffinity", lambda pid: {0, 1, 2})

    def concurrency(**values: object) -> int:
        return Settings(_env_file=None, **values).job_concurrency  # type: ignore[call-arg]

    assert concurrency(embedding_provider="local") == 3  # CPU-bound: one job per core
    assert concurrency(embedding_provider="llamacpp") == 3
    assert concurrency(embedding_provider="openai") == 12  # I/O-bound: four per core
    monkeypatch.setattr(settings_module.os, "sched_getaffinity", lambda pid: set(range(32)))
    assert concurrency(embedding_provider="ollama") == 16  # at most 16
    assert concurrency(embedding_provider="openai", worker_concurrency=5) == 5  # as configured
    with pytest.raises(ValidationError):
        Settings(_env_file=None, worker_concurrency=0)  # type: ignore[call-arg]
