"""What a source shows: no credentials from a repository URL, no internal settings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lorebase.knowledge.source_schemas import SourceRead, redact


def test_credentials_in_https_urls_are_hidden() -> None:
    assert redact("https://bot:ghp_secret@github.com/org/repo.git#main") == (
        "https://***@github.com/org/repo.git#main"
    )
    assert redact("https://github.com/org/repo.git") == "https://github.com/org/repo.git"
    assert redact("git@github.com:org/repo.git") == "git@github.com:org/repo.git"


def test_a_source_read_hides_the_token_and_the_internal_settings() -> None:
    now = datetime.now(UTC)
    url = "https://bot:ghp_secret@github.com/org/repo.git"
    row = {
        "id": uuid.uuid4(),
        "project_id": uuid.uuid4(),
        "kind": "git",
        "uri": f"{url}#main",
        "settings": {"url": url, "ref": "main", "allow_file": False, "tags": []},
        "sync_interval_seconds": None,
        "status": "idle",
        "last_synced_at": None,
        "last_error": None,
        "last_job_id": None,
        "next_sync_at": None,
        "documents": 4,
        "retired": 1,
        "created_at": now,
        "updated_at": now,
    }
    source = SourceRead.from_row(row)
    assert "ghp_secret" not in source.model_dump_json()
    assert source.settings == {
        "url": "https://***@github.com/org/repo.git",
        "ref": "main",
        "tags": [],
    }
    assert (source.documents, source.retired_documents) == (4, 1)
