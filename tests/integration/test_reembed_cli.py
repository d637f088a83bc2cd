"""`lorebase reembed --project ID`: the command moves a project to the configured embedding
model (here Ollama's all-minilm on a loopback fake) and reports what it did."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector
from typer.testing import CliRunner

from lorebase.cli import app
from lorebase.settings import get_settings
from tests.conftest import TEST_REDIS_URL
from tests.contract.fake_vendor import FakeVendor, Reply


@pytest.fixture
def ollama() -> Iterator[FakeVendor]:
    rng = np.random.default_rng(3)
    fake = FakeVendor(
        default=lambda path, body: Reply(
            json={
                "model": body["model"],
                "embeddings": [rng.standard_normal(384).tolist() for _ in body["input"]],
            }
        )
    )
    yield fake
    fake.stop()


def seed_project(database_url: str, chunks: list[str]) -> uuid.UUID:
    """A project whose chunks are stored in the local MiniLM space."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        register_vector(conn)
        owner = conn.execute(
            "INSERT INTO users (username, password_hash) VALUES (%s, 'x') RETURNING id",
            (f"cli-{uuid.uuid4().hex[:12]}",),
        ).fetchone()[
            0
        ]  # type: ignore[index]
        project = conn.execute(
            "INSERT INTO projects (name, owner_id, embedding_model, embedding_dim) "
            "VALUES ('p', %s, 'all-MiniLM-L6-v2', 384) RETURNING id",
            (owner,),
        ).fetchone()[
            0
        ]  # type: ignore[index]
        document = conn.execute(
            "INSERT INTO documents (project_id, name, type, content_hash) "
            "VALUES (%s, 'd', 'text', 'h') RETURNING id",
            (project,),
        ).fetchone()[
            0
        ]  # type: ignore[index]
        version = conn.execute(
            "INSERT INTO document_versions (document_id, version, major, minor, patch, "
            "content_hash) VALUES (%s, '1.0.0', 1, 0, 0, 'h') RETURNING id",
            (document,),
        ).fetchone()[
            0
        ]  # type: ignore[index]
        for index, chunk in enumerate(chunks):
            conn.execute(
                "INSERT INTO knowledge_items (project_id, document_id, document_version_id, "
                "chunk_index, chunk_text, content_hash, embedding, embedding_model, "
                "embedding_dim) VALUES (%s, %s, %s, %s, %s, 'h', %s, 'all-MiniLM-L6-v2', 384)",
                (project, document, version, index, chunk, np.ones(384, dtype=np.float32)),
            )
    return project  # type: ignore[no-any-return]


def spaces(database_url: str, project: uuid.UUID) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT embedding_model, embedding_dim, count(*) FROM knowledge_items "
            "WHERE project_id = %s GROUP BY 1, 2",
            (project,),
        ).fetchall()


def test_reembed_moves_the_project_and_says_so(
    database_url: str, ollama: FakeVendor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = seed_project(database_url, ["alpha", "beta", "gamma"])
    for name, value in {
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "LOREBASE_SECRET_KEY": "k" * 40,
        "LOREBASE_DATA_DIR": str(tmp_path),
        "EMBEDDING_PROVIDER": "ollama",
        "EMBEDDING_MODEL": "all-minilm",
        "OLLAMA_BASE_URL": ollama.url,
        "LLM_PROVIDER": "extractive",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # no .env
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["reembed", "--project", str(project)])
        again = CliRunner().invoke(app, ["reembed", "--project", str(project)])
        missing = CliRunner().invoke(app, ["reembed", "--project", str(uuid.uuid4())])
    finally:
        get_settings.cache_clear()

    assert result.exit_code == 0, result.output
    assert f"re-embedding project {project} with ollama/all-minilm (384-d)" in result.output
    assert "  3/3 items" in result.output
    assert "moved from all-MiniLM-L6-v2 to all-minilm: 3 items embedded, 3 old items removed" in (
        result.output
    )
    assert spaces(database_url, project) == [("all-minilm", 384, 3)]
    assert sorted(t for call in ollama.calls("/api/embed") for t in call.body["input"]) == [
        "alpha",
        "beta",
        "gamma",
    ]
    assert again.exit_code == 0
    assert "already in all-minilm; nothing to do" in again.output
    assert missing.exit_code == 1
    assert "does not exist" in missing.output
