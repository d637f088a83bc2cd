"""Git repositories created in the test, synced over the API by a real worker."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lorebase.context import AppContext
from lorebase.knowledge.sources import git as git_source
from lorebase.main import create_app
from tests import samples
from tests.factories import TestUser, create_project, register_user
from tests.ingestion import chunks_of, drain

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def write(repo: Path, path: str, content: str | bytes) -> None:
    target = repo / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    write(repo, "README.md", "# Widget\n\nWidget renders charts from CSV files.\n")
    write(repo, "docs/guide.md", "# Guide\n\nRun `widget render data.csv` to draw a chart.\n")
    write(repo, "src/widget.py", samples.PYTHON)
    write(repo, "config/settings.yaml", "render:\n  width: 800\n  height: 600\n")
    write(repo, "assets/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    write(repo, "data/huge.txt", "row of data\n" * 1000)
    write(repo, "node_modules/lib/index.js", "module.exports = 1;\n")
    os.symlink("/etc/passwd", repo / "passwd-link")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "tag", "v1")
    return repo


@pytest.fixture(scope="module")
def git_ctx(ctx: AppContext) -> AppContext:
    settings = ctx.settings.model_copy(
        update={"git_max_file_bytes": 5_000, "rate_limit_ingest": "1000/minute"}
    )
    return dataclasses.replace(ctx, settings=settings)


@pytest.fixture(scope="module")
async def git_client(git_ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(context=git_ctx)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def sync(
    client: httpx.AsyncClient, ctx: AppContext, user: TestUser, **body: Any
) -> dict[str, Any]:
    response = await client.post("/api/v1/knowledge/git", json=body, headers=user.headers)
    assert response.status_code == 202, response.text
    await drain(ctx)
    job = await client.get(f"/api/v1/jobs/{response.json()['job_id']}", headers=user.headers)
    result: dict[str, Any] = job.json()
    return result


async def documents(
    client: httpx.AsyncClient, user: TestUser, project: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    response = await client.get(
        "/api/v1/documents",
        params={"project_id": project["id"], "limit": 500},
        headers=user.headers,
    )
    return {doc["name"]: doc for doc in response.json()["items"]}


async def test_sync_indexes_files_and_resync_adds_updates_and_removes(
    git_client: httpx.AsyncClient, git_ctx: AppContext, repo: Path
) -> None:
    admin = await register_user(git_client, admin=True, ctx=git_ctx)
    project = await create_project(git_client, admin.headers)
    url = repo.as_uri()
    job = await sync(git_client, git_ctx, admin, project_id=project["id"], url=url, ref="main")
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["commit"] == git(repo, "rev-parse", "HEAD")
    docs = await documents(git_client, admin, project)
    assert set(docs) == {"README.md", "docs/guide.md", "src/widget.py", "config/settings.yaml"}
    assert docs["src/widget.py"]["type"] == "code"
    assert docs["src/widget.py"]["source_uri"] == f"git+{url}#src/widget.py"
    assert docs["README.md"]["metadata"]["commit"] == result["commit"]
    assert "unsupported file type" in result["skipped"]["assets/logo.png"]
    assert result["skipped"]["data/huge.txt"] == "larger than 5000 bytes"
    assert result["skipped"]["passwd-link"] == "symbolic link"
    assert not any(path.startswith("node_modules") for path in result["skipped"])
    chunks = await chunks_of(git_ctx, docs["docs/guide.md"]["id"])
    assert chunks[0]["metadata"]["path"] == "docs/guide.md"
    assert chunks[0]["metadata"]["repository"] == url
    assert all("root:" not in c["chunk_text"] for c in chunks)

    write(repo, "README.md", "# Widget\n\nWidget renders charts from CSV and JSON files.\n")
    (repo / "docs/guide.md").unlink()
    write(repo, "docs/faq.md", "# FAQ\n\nCharts are SVG by default.\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    again = await sync(git_client, git_ctx, admin, project_id=project["id"], url=url, ref="main")
    assert again["status"] == "succeeded", again
    counts = {key: again["result"][key] for key in ("added", "updated", "unchanged", "removed")}
    assert counts == {"added": 1, "updated": 1, "unchanged": 2, "removed": 1}
    docs = await documents(git_client, admin, project)
    assert set(docs) == {"README.md", "docs/faq.md", "src/widget.py", "config/settings.yaml"}
    assert docs["README.md"]["version"] == "1.1.0"


async def test_ref_and_include_exclude_globs(
    git_client: httpx.AsyncClient, git_ctx: AppContext, repo: Path
) -> None:
    admin = await register_user(git_client, admin=True, ctx=git_ctx)
    write(repo, "README.md", "# Widget 2\n\nRewritten.\n")
    git(repo, "commit", "-q", "-am", "later")
    project = await create_project(git_client, admin.headers)
    job = await sync(
        git_client,
        git_ctx,
        admin,
        project_id=project["id"],
        url=repo.as_uri(),
        ref="v1",
        include=["*.md"],
        exclude=["docs/"],
    )
    assert job["status"] == "succeeded", job
    docs = await documents(git_client, admin, project)
    assert set(docs) == {"README.md"}
    readme = await git_client.get(
        f"/api/v1/documents/{docs['README.md']['id']}", headers=admin.headers
    )
    assert "renders charts" in readme.json()["content"], "the tag's content, not main's"


async def test_unknown_ref_fails_the_job_readably(
    git_client: httpx.AsyncClient, git_ctx: AppContext, repo: Path
) -> None:
    admin = await register_user(git_client, admin=True, ctx=git_ctx)
    project = await create_project(git_client, admin.headers)
    job = await sync(
        git_client, git_ctx, admin, project_id=project["id"], url=repo.as_uri(), ref="nope"
    )
    assert job["status"] == "failed"
    assert job["error"].startswith("git fetch failed:")
    assert "nope" in job["error"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc", "file:// repositories need an admin"),
        ("https://127.0.0.1/repo.git", "private"),
        ("ftp://example.com/repo.git", "repository URLs must be"),
        ("--upload-pack=touch /tmp/x", "not a repository URL"),
    ],
)
async def test_refused_repository_urls(client: httpx.AsyncClient, url: str, reason: str) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    response = await client.post(
        "/api/v1/knowledge/git",
        json={"project_id": project["id"], "url": url},
        headers=user.headers,
    )
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "ssh://-oProxyCommand=touch${IFS}/tmp/pwned/x",
        "-uhttps://example.com/r.git",
        "ssh://git@example.com/r.git?ProxyCommand=x",
    ],
)
async def test_option_like_git_urls_are_refused(client: httpx.AsyncClient, url: str) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    response = await client.post(
        "/api/v1/knowledge/git",
        json={"project_id": project["id"], "url": url},
        headers=user.headers,
    )
    assert response.status_code == 422, response.text


async def test_git_host_is_checked_again_at_fetch_time(tmp_path: Path) -> None:
    options = git_source.GitOptions(url="https://localhost/repo.git")
    with pytest.raises(git_source.GitError, match="private"):
        await git_source.fetch(options, tmp_path / "clone")
