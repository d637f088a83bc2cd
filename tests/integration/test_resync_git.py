"""Re-syncing a git source: only the files a commit touched are read and embedded; deleted
files go; a force-push diffs tree to tree; a lost clone falls back to reading every file (and
the content-hash gate still embeds nothing that did not change)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lorebase.context import AppContext
from lorebase.knowledge.sources import git as git_source
from lorebase.main import create_app
from tests.counting_embedder import CountingEmbedder, counting_context, forget_cached_embeddings
from tests.factories import TestUser, create_project, register_user
from tests.ingestion import chunks_of, drain
from tests.integration.test_git import documents, git, sync, write

FILES = {
    "README.md": "# Orchard\n\nThe orchard keeps apples, pears and quinces.\n",
    "docs/pruning.md": "# Pruning\n\nPrune apple trees in late winter.\n",
    "docs/harvest.md": "# Harvest\n\nPick pears before they are fully ripe.\n",
    "config/trees.yaml": "trees:\n  apple: 12\n  pear: 4\n",
}


@pytest.fixture(scope="module")
def counted(ctx: AppContext) -> tuple[AppContext, CountingEmbedder]:
    return counting_context(ctx, rate_limit_ingest="1000/minute")


@pytest.fixture(scope="module")
async def http(counted: tuple[AppContext, CountingEmbedder]) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(context=counted[0])
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "orchard"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for path, content in FILES.items():
        write(repo, path, content)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    return repo


class Source:
    """One project's git source, synced again and again with a fresh embedding count."""

    def __init__(
        self, http: httpx.AsyncClient, counted: tuple[AppContext, CountingEmbedder], repo: Path
    ) -> None:
        self.http, (self.ctx, self.embedder), self.repo = http, counted, repo
        self.user: TestUser | None = None
        self.project: dict[str, Any] = {}

    async def sync(self) -> dict[str, Any]:
        if self.user is None:
            self.user = await register_user(self.http, admin=True, ctx=self.ctx)
            self.project = await create_project(self.http, self.user.headers)
        await forget_cached_embeddings(self.ctx)
        self.embedder.texts.clear()
        job = await sync(
            self.http,
            self.ctx,
            self.user,
            project_id=self.project["id"],
            url=self.repo.as_uri(),
            ref="main",
        )
        assert job["status"] == "succeeded", job
        result: dict[str, Any] = job["result"]
        return result

    async def documents(self) -> dict[str, dict[str, Any]]:
        assert self.user is not None
        return await documents(self.http, self.user, self.project)

    async def cache(self) -> Path:
        async with self.ctx.db.connection() as conn:
            cursor = await conn.execute(
                "SELECT id FROM sources WHERE project_id = %s", (self.project["id"],)
            )
            row = await cursor.fetchone()
        assert row is not None
        return git_source.cache_directory(self.ctx.settings.lorebase_data_dir, str(row["id"]))

    def commit(self, message: str) -> str:
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", message)
        return git(self.repo, "rev-parse", "HEAD")


@pytest.fixture
def source(
    http: httpx.AsyncClient, counted: tuple[AppContext, CountingEmbedder], repo: Path
) -> Source:
    return Source(http, counted, repo)


async def test_a_commit_touching_one_file_re_embeds_only_that_file(
    source: Source, repo: Path
) -> None:
    first = await source.sync()
    assert first["full_sync"] == "first sync"
    assert (first["read"], first["added"]) == (4, 4)
    assert (await source.cache() / ".git").is_dir(), "the clone is kept for the next sync"

    write(repo, "docs/pruning.md", "# Pruning\n\nPrune apple trees in late winter, gently.\n")
    source.commit("gentler pruning")
    again = await source.sync()
    assert again["since"] == first["commit"]
    assert again["full_sync"] is None
    assert again["read"] == 1, "only the changed file was read"
    assert again["counts"] == {
        "added": 0,
        "updated": 1,
        "unchanged": 3,
        "not_modified": 0,
        "retired": 0,
        "errors": 0,
        "removed": 0,
    }
    docs = await source.documents()
    pruning = await chunks_of(source.ctx, docs["docs/pruning.md"]["id"])
    assert len(source.embedder.texts) == len(pruning), "one embedding per chunk of that file"
    assert all("gently" in text for text in source.embedder.texts)
    assert docs["docs/pruning.md"]["version"] == "1.1.0"
    assert {docs[name]["version"] for name in ("README.md", "docs/harvest.md")} == {"1.0.0"}

    nothing = await source.sync()
    assert (nothing["since"], nothing["read"], nothing["unchanged"]) == (again["commit"], 0, 4)
    assert source.embedder.texts == []


async def test_deleted_and_renamed_files(source: Source, repo: Path) -> None:
    await source.sync()
    (repo / "docs/harvest.md").unlink()
    git(repo, "mv", "config/trees.yaml", "config/orchard.yaml")
    source.commit("drop harvest, rename trees")
    again = await source.sync()
    assert again["full_sync"] is None
    assert (again["read"], again["added"], again["removed"], again["unchanged"]) == (1, 1, 2, 2)
    docs = await source.documents()
    assert set(docs) == {"README.md", "docs/pruning.md", "config/orchard.yaml"}


async def test_force_push_diffs_tree_to_tree_and_a_lost_clone_reads_everything(
    source: Source, repo: Path
) -> None:
    first = await source.sync()
    write(repo, "README.md", "# Orchard\n\nThe orchard keeps apples only.\n")
    source.commit("apples only")
    await source.sync()

    # History rewritten: the README change is dropped, the harvest page changes instead.
    git(repo, "reset", "-q", "--hard", first["commit"])
    write(repo, "docs/harvest.md", "# Harvest\n\nPick pears green; they ripen indoors.\n")
    source.commit("harvest advice")
    pushed = await source.sync()
    assert pushed["full_sync"] is None
    assert (pushed["read"], pushed["updated"], pushed["unchanged"]) == (2, 2, 2)
    docs = await source.documents()
    readme = await source.http.get(
        f"/api/v1/documents/{docs['README.md']['id']}", headers=source.user.headers  # type: ignore[union-attr]
    )
    assert "pears and quinces" in readme.json()["content"], "the README is back as it was"

    shutil.rmtree(await source.cache())
    write(repo, "config/trees.yaml", "trees:\n  apple: 12\n  pear: 5\n")
    source.commit("one more pear")
    lost = await source.sync()
    assert lost["full_sync"] == "previous commit not in the cache"
    assert (lost["read"], lost["updated"], lost["unchanged"]) == (4, 1, 3)
    assert source.embedder.texts, "the changed file was embedded"
    assert all("pear: 5" in text for text in source.embedder.texts), "and nothing else"
    after = await source.sync()
    assert (after["full_sync"], after["read"]) == (None, 0), "the clone is back"


async def test_deleting_the_source_drops_its_clone(source: Source) -> None:
    await source.sync()
    cache = await source.cache()
    assert (cache / ".git").is_dir()
    assert source.user is not None
    async with source.ctx.db.connection() as conn:
        cursor = await conn.execute(
            "SELECT id FROM sources WHERE project_id = %s", (source.project["id"],)
        )
        row = await cursor.fetchone()
    assert row is not None
    response = await source.http.delete(f"/api/v1/sources/{row['id']}", headers=source.user.headers)
    assert response.status_code == 202, response.text
    await drain(source.ctx)
    assert not cache.exists()
