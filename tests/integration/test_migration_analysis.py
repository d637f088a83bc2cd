"""Migration 0005 re-analyses the chunks already stored: their `tsv` (words split at every
non-word character, identifiers kept whole, no stop word dropped) and `tsv_length`; the
downgrade restores PostgreSQL's `english` analysis."""

from __future__ import annotations

import uuid

import psycopg
from alembic import command
from psycopg.rows import dict_row

from lorebase.migrate import alembic_config, upgrade_database
from tests.pgcluster import TcpPostgres

TEXT = "Edit config.yaml, then call curl_easy_setopt; do not log out."


def _insert_chunk(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        user = conn.execute(
            "INSERT INTO users (username, password_hash) VALUES (%s, 'x') RETURNING id",
            (f"mig_{uuid.uuid4().hex[:8]}",),
        ).fetchone()
        project = conn.execute(
            "INSERT INTO projects (name, owner_id) VALUES ('p', %s) RETURNING id", (user[0],)
        ).fetchone()
        document = conn.execute(
            "INSERT INTO documents (project_id, name, type, content_hash) "
            "VALUES (%s, 'd', 'markdown', 'h') RETURNING id",
            (project[0],),
        ).fetchone()
        version = conn.execute(
            "INSERT INTO document_versions (document_id, version, major, minor, patch, "
            "content_hash) VALUES (%s, '1.0.0', 1, 0, 0, 'h') RETURNING id",
            (document[0],),
        ).fetchone()
        conn.execute(
            "INSERT INTO knowledge_items (project_id, document_id, document_version_id, "
            "chunk_index, chunk_text, content_hash, embedding, embedding_model, embedding_dim) "
            "VALUES (%s, %s, %s, 0, %s, 'h', '[1,0,0]', 'm', 3)",
            (project[0], document[0], version[0], TEXT),
        )


def _lexemes(url: str) -> list[str]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        row = conn.execute(
            "SELECT tsvector_to_array(tsv) AS lexemes FROM knowledge_items"
        ).fetchone()
    assert row is not None
    return list(row["lexemes"])


def _length(url: str) -> int:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        row = conn.execute("SELECT tsv_length FROM knowledge_items").fetchone()
    assert row is not None
    return int(row["tsv_length"])


def _indexed(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_knowledge_items_tsv'"
        ).fetchone()
    return row is not None and "gin (tsv)" in row[0]


def test_upgrade_reanalyses_existing_chunks_and_downgrade_restores_english(
    pg_server: TcpPostgres,
) -> None:
    url = pg_server.create_database(f"analysis_{uuid.uuid4().hex[:8]}")
    upgrade_database(url, "0004")
    _insert_chunk(url)
    before = _lexemes(url)
    assert "config.yaml" in before
    assert not {"yaml", "out"} & set(before)

    upgrade_database(url)
    lexemes = _lexemes(url)
    assert {"config", "yaml", "curl", "easi", "setopt", "not", "out"} <= set(lexemes)
    assert "curl\u02cdeasy\u02cdsetopt" in lexemes
    assert "config.yaml" not in lexemes
    # 12 words (every one kept, "do" and "not" too) and the identifier.
    assert _length(url) == 13
    assert _indexed(url)

    command.downgrade(alembic_config(url), "0004")
    assert _lexemes(url) == before
    assert _indexed(url)
