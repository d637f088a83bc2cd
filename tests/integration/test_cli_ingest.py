"""`lorebase ingest PATH... --project ID`: folders recursively, .gitignore honoured."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from typer.testing import CliRunner

from lorebase.cli import app as cli_app
from lorebase.knowledge.sources.files import collect_files
from lorebase.settings import Settings, get_settings
from tests.factories import create_project, register_user
from tests.integration.test_cli_user import _env


def make_tree(root: Path) -> Path:
    docs = root / "docs"
    (docs / "secret").mkdir(parents=True)
    (docs / "nested").mkdir()
    (docs / ".git").mkdir()
    (docs / ".gitignore").write_text("secret/\n*.log\n")
    (docs / "a.md").write_text("# Alpha\n\nAlpha notes about the rollout plan.\n")
    (docs / "b.py").write_text("def beta():\n    return 'beta'\n")
    (docs / "secret" / "x.md").write_text("# Secret\n")
    (docs / "debug.log").write_text("noise\n")
    (docs / "nested" / ".gitignore").write_text("draft.md\n")
    (docs / "nested" / "draft.md").write_text("# Draft\n")
    (docs / "nested" / "keep.md").write_text("# Keep\n\nKept notes.\n")
    (docs / ".git" / "config").write_text("[core]\n")
    (docs / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (root / "c.txt").write_text("Loose notes from the retro.\n")
    return docs


def test_collect_files_honours_gitignore(tmp_path: Path) -> None:
    docs = make_tree(tmp_path)
    names = [name for _, name in collect_files([docs, tmp_path / "c.txt"])]
    assert names == [
        "docs/a.md",
        "docs/b.py",
        "docs/logo.png",
        "docs/nested/keep.md",
        "c.txt",
    ]


async def test_ingest_command_indexes_a_folder(
    client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    docs = make_tree(tmp_path)
    env = _env(settings, tmp_path)

    def run() -> object:
        get_settings.cache_clear()
        try:
            args = ["ingest", str(docs), str(tmp_path / "c.txt"), "--project", project["id"]]
            return CliRunner().invoke(cli_app, [*args, "--tag", "cli"], env=env)
        finally:
            get_settings.cache_clear()

    result = await asyncio.to_thread(run)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "4 succeeded" in result.output  # type: ignore[attr-defined]
    assert "1 skipped" in result.output  # type: ignore[attr-defined]
    listed = await client.get(
        "/api/v1/documents", params={"project_id": project["id"]}, headers=user.headers
    )
    documents = {doc["name"]: doc for doc in listed.json()["items"]}
    assert set(documents) == {"docs/a.md", "docs/b.py", "docs/nested/keep.md", "c.txt"}
    assert all(doc["status"] == "ready" and doc["tags"] == ["cli"] for doc in documents.values())
    assert documents["docs/b.py"]["created_by"] == user.id, "recorded as the project owner's"
