"""A git source's kept clone: diffing from the last synced commit, and what happens when the
clone is busy, broken or the stored commit is not one (real `git`, file:// repositories)."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from lorebase.knowledge.sources import git as git_source
from tests.integration.test_git import git, write


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for name in ("a", "b", "c"):
        write(repo, f"{name}.md", f"# {name}\n\nThe {name} page.\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "first")
    return repo


def options(repo: Path) -> git_source.GitOptions:
    return git_source.GitOptions(url=repo.as_uri(), allow_file=True, timeout_seconds=60)


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


async def test_diff_reads_changed_and_unindexed_files_only(repo: Path, tmp_path: Path) -> None:
    cache = git_source.cache_directory(tmp_path, "source")
    first = await git_source.checkout_repository(options(repo), cache=cache)
    assert first.full_reason == "first sync"
    assert sorted(file.path for file in first.files) == ["a.md", "b.md", "c.md"]

    write(repo, "a.md", "# a\n\nChanged.\n")
    (repo / "b.md").unlink()
    write(repo, "d.md", "# d\n\nNew.\n")
    commit(repo, "second")
    again = await git_source.checkout_repository(
        options(repo), cache=cache, previous=first.commit, indexed=frozenset({"a.md", "b.md"})
    )
    assert again.since == first.commit
    assert again.full_reason is None
    # a changed, d is new, c has no indexed document yet: read; nothing else is.
    assert sorted(file.path for file in again.files) == ["a.md", "c.md", "d.md"]
    assert again.kept == []
    assert sorted(again.selected) == ["a.md", "c.md", "d.md"], "b is gone"

    same = await git_source.checkout_repository(
        options(repo), cache=cache, previous=again.commit, indexed=frozenset({"a.md", "c.md"})
    )
    assert [file.path for file in same.files] == ["d.md"]
    assert sorted(same.kept) == ["a.md", "c.md"]


async def test_a_busy_clone_is_left_alone_and_every_file_read(repo: Path, tmp_path: Path) -> None:
    cache = git_source.cache_directory(tmp_path, "source")
    first = await git_source.checkout_repository(options(repo), cache=cache)
    with (cache.parent / "source.lock").open("a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another sync of the source
        busy = await git_source.checkout_repository(
            options(repo), cache=cache, previous=first.commit
        )
    assert busy.full_reason == "no cached clone"
    assert len(busy.files) == 3
    assert (cache / ".git").is_dir(), "the other sync's clone is untouched"


async def test_a_stored_commit_that_is_no_commit_means_a_full_read(
    repo: Path, tmp_path: Path
) -> None:
    cache = git_source.cache_directory(tmp_path, "source")
    await git_source.checkout_repository(options(repo), cache=cache)
    write(repo, "a.md", "# a\n\nChanged.\n")
    commit(repo, "second")
    for previous in ("--output=/tmp/x", "HEAD~1", "0" * 40):
        checkout = await git_source.checkout_repository(
            options(repo), cache=cache, previous=previous
        )
        assert checkout.since is None
        assert len(checkout.files) == 3, previous


async def test_a_failed_fetch_drops_the_clone(repo: Path, tmp_path: Path) -> None:
    cache = git_source.cache_directory(tmp_path, "source")
    await git_source.checkout_repository(options(repo), cache=cache)
    missing = git_source.GitOptions(url=(tmp_path / "nowhere").as_uri(), allow_file=True)
    with pytest.raises(git_source.GitError, match="git fetch failed"):
        await git_source.checkout_repository(missing, cache=cache)
    assert not cache.exists(), "the next sync starts from a fresh clone"
    await git_source.checkout_repository(options(repo), cache=cache)
    git_source.drop_cache(tmp_path, "source")
    assert not cache.exists()
    assert not (cache.parent / "source.lock").exists()
