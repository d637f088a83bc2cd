"""Git repositories: a shallow fetch of one ref with the `git` binary, then the files.

A source's clone is kept between syncs (in a cache directory): a re-sync fetches the new
commit and reads only the files `git diff` shows changed since the commit the last sync
stored, plus any selected file that has no searchable document yet. Without that commit in the
cache (first sync, lost cache, another machine) every file is read.

https, http, ssh (`ssh://` or `git@host:path`) and file URLs. Only regular files are read:
symlinks (which could point anywhere on this machine) and submodules are skipped, as are
binaries, files over the size limit and paths outside the include/exclude globs. Redirects
are not followed (an https remote cannot bounce the fetch to an internal address).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import pathspec

from lorebase.knowledge.detect import FileType, UnsupportedFile, detect_file
from lorebase.knowledge.sources.netguard import BlockedAddress, IPNetwork, resolve_checked

DEFAULT_EXCLUDE = (
    ".git/", "node_modules/", "vendor/", "third_party/", "dist/", "build/", "target/", "out/",
    ".venv/", "venv/", "__pycache__/", ".tox/", ".mypy_cache/", ".pytest_cache/", ".idea/",
    ".vscode/", "*.min.js", "*.min.css", "*.map", "*.lock", "package-lock.json",
    "pnpm-lock.yaml", "go.sum", "*.svg", "*.pb.go", "*_pb2.py",
)  # fmt: skip
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:(?!//)[^\s]+$")
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
SYNCED_REF = "refs/lorebase/synced"  # keeps the last synced commit in the cache


class GitError(Exception):
    """The repository could not be fetched; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class GitOptions:
    url: str
    ref: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    max_file_bytes: int = 1_000_000
    max_files: int = 5_000
    timeout_seconds: float = 300.0
    allow_file: bool = False
    # Private networks a repository host may resolve to (CRAWL_ALLOW_PRIVATE_NETWORKS).
    allowed_networks: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True)
class RepoFile:
    path: str
    data: bytes
    file_type: FileType


@dataclass
class Checkout:
    commit: str
    files: list[RepoFile] = field(default_factory=list)  # read: new, changed or not indexed
    skipped: dict[str, str] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)  # selected, unchanged since `since`: not read
    since: str | None = None  # the commit the diff started from (None: every file was read)
    full_reason: str | None = None  # why every file was read

    @property
    def selected(self) -> list[str]:
        """Every path the sync keeps: read or unchanged."""
        return [file.path for file in self.files] + self.kept


def url_kind(url: str) -> str:
    """`https`, `http`, `ssh` or `file`; raises `GitError` for anything else."""
    if url.startswith("-") or "proxycommand" in url.lower():
        raise GitError("not a repository URL")
    if _SCP_LIKE.match(url):
        return "ssh"
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("https", "http", "ssh", "file"):
        host = urlsplit(url).hostname
        if scheme != "file" and not host:
            raise GitError("the repository URL has no host")
        if host and host.startswith("-"):
            raise GitError("not a repository URL")  # ssh would read it as an option
        return scheme
    raise GitError("repository URLs must be https://, http://, ssh://, git@host:path or file://")


def url_host(url: str) -> str | None:
    if _SCP_LIKE.match(url):
        return url.split("@", 1)[1].split(":", 1)[0]
    return urlsplit(url).hostname


def _redact(text: str) -> str:
    # Credentials in https URLs must not reach job errors.
    return re.sub(r"(https?://)[^/@\s]+@", r"\1***@", text)


async def _git(*args: str, cwd: Path, timeout: float) -> str:  # noqa: ASYNC109
    command = next((a for a in args if not a.startswith("-") and "=" not in a), "git")
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GIT_SSH_COMMAND": "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise GitError(f"git {command} timed out after {timeout:.0f}s") from None
    if process.returncode != 0:
        lines = [line for line in stderr.decode(errors="replace").splitlines() if line.strip()]
        detail = _redact(" / ".join(lines[-3:])) or f"exit code {process.returncode}"
        raise GitError(f"git {command} failed: {detail}")
    return stdout.decode(errors="replace")


async def fetch(options: GitOptions, directory: Path) -> str:
    """Shallow-fetch `options.ref` (default HEAD) into `directory`; returns the commit."""
    kind = url_kind(options.url)
    if kind == "file" and not options.allow_file:
        raise GitError("file:// repositories are not allowed here (GIT_ALLOW_FILE_URLS)")
    if options.ref is not None and options.ref.startswith("-"):
        raise GitError("a ref cannot start with '-'")
    host = url_host(options.url)
    if kind != "file" and host:
        # Checked again now, not only when the job was submitted: DNS may have changed.
        try:
            await resolve_checked(host, 22 if kind == "ssh" else 443, options.allowed_networks)
        except BlockedAddress as exc:
            raise GitError(str(exc)) from None
    protocols = [
        "-c", "protocol.allow=never",
        "-c", "protocol.https.allow=always",
        "-c", "protocol.http.allow=always",
        "-c", "protocol.ssh.allow=always",
        "-c", f"protocol.file.allow={'always' if options.allow_file else 'never'}",
        "-c", "http.followRedirects=false",
        "-c", "core.symlinks=false",
        "-c", "core.hooksPath=/dev/null",
        "-c", "advice.detachedHead=false",
    ]  # fmt: skip
    timeout = options.timeout_seconds
    if (directory / ".git").is_dir():
        await _git("remote", "set-url", "origin", options.url, cwd=directory, timeout=timeout)
    else:
        directory.parent.mkdir(parents=True, exist_ok=True)
        await _git("init", "-q", str(directory), cwd=directory.parent, timeout=timeout)
        await _git("remote", "add", "origin", options.url, cwd=directory, timeout=timeout)
    ref = options.ref or "HEAD"
    await _git(
        *protocols,
        "fetch", "--depth=1", "--no-tags", "--quiet", "origin", ref,
        cwd=directory,
        timeout=timeout,
    )  # fmt: skip
    await _git(*protocols, "checkout", "--quiet", "--force", "--detach", "FETCH_HEAD",
               cwd=directory, timeout=timeout)  # fmt: skip
    return (await _git("rev-parse", "HEAD", cwd=directory, timeout=timeout)).strip()


def _entries(listing: str) -> Iterator[tuple[str, str]]:
    """(mode, path) from `git ls-files -s -z`."""
    for entry in listing.split("\0"):
        if not entry:
            continue
        meta, _, path = entry.partition("\t")
        yield meta.split(" ", 1)[0], path


def select_files(
    directory: Path, listing: str, options: GitOptions, only: set[str] | None = None
) -> Checkout:
    """Read the tracked regular files the globs select (blocking: run in a thread); with
    `only`, the other selected files are listed in `kept`, not read."""
    include = pathspec.GitIgnoreSpec.from_lines(options.include) if options.include else None
    exclude = pathspec.GitIgnoreSpec.from_lines(options.exclude)
    checkout = Checkout(commit="")
    root = directory.resolve()
    for mode, path in _entries(listing):
        if include is not None and not include.match_file(path):
            continue
        if exclude.match_file(path):
            continue
        if mode == "120000":
            checkout.skipped[path] = "symbolic link"
            continue
        if mode == "160000":
            checkout.skipped[path] = "submodule"
            continue
        if len(checkout.files) + len(checkout.kept) >= options.max_files:
            checkout.skipped[path] = f"more than {options.max_files} files"
            continue
        target = (root / path).resolve()
        if not target.is_relative_to(root) or target.is_symlink() or not target.is_file():
            checkout.skipped[path] = "not a regular file"
            continue
        size = target.stat().st_size
        if size > options.max_file_bytes:
            checkout.skipped[path] = f"larger than {options.max_file_bytes} bytes"
            continue
        if only is not None and path not in only:
            checkout.kept.append(path)
            continue
        data = target.read_bytes()
        try:
            file_type = detect_file(path, data)
        except UnsupportedFile as exc:
            checkout.skipped[path] = str(exc).removeprefix(f"{path}").lstrip(": ") or "unsupported"
            continue
        checkout.files.append(RepoFile(path=path, data=data, file_type=file_type))
    return checkout


async def checkout_repository(
    options: GitOptions,
    *,
    cache: Path | None = None,
    previous: str | None = None,
    indexed: frozenset[str] = frozenset(),
) -> Checkout:
    """Fetch and read the repository, in `cache` (kept for the next sync) or a temporary
    directory. With `previous` in the cache only the files changed since then are read, and
    the selected ones not in `indexed` (paths with a searchable document)."""
    timeout = options.timeout_seconds
    async with _workspace(cache) as (directory, cached):
        commit = await fetch(options, directory)
        changed, reason = (
            await _changed_since(directory, previous, commit, timeout)
            if cached
            else (None, "no cached clone")
        )
        listing = await _git("ls-files", "-s", "-z", cwd=directory, timeout=timeout)
        paths = {path for _, path in _entries(listing)}
        only = None if changed is None else changed | (paths - indexed)
        checkout = await asyncio.to_thread(select_files, directory, listing, options, only)
        if cached:
            await _git("update-ref", SYNCED_REF, commit, cwd=directory, timeout=timeout)
    checkout.commit = commit
    checkout.since = previous if changed is not None else None
    checkout.full_reason = reason
    return checkout


@contextlib.asynccontextmanager
async def _workspace(cache: Path | None) -> AsyncIterator[tuple[Path, bool]]:
    """(directory, kept): the cached clone, locked against another sync of the same source,
    or a temporary directory when there is no cache or it is busy. A sync that fails drops
    the cache (the next one starts over)."""
    lock = None if cache is None else _try_lock(cache.parent / f"{cache.name}.lock")
    try:
        if cache is not None and lock is not None:
            try:
                yield cache, True
            except BaseException:
                await asyncio.to_thread(shutil.rmtree, cache, ignore_errors=True)
                raise
            return
        with tempfile.TemporaryDirectory(prefix="lorebase-git-") as tmp:
            yield Path(tmp) / "repo", False
    finally:
        if lock is not None:
            lock.close()


def _try_lock(path: Path) -> BinaryIO | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+b")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


async def _changed_since(
    directory: Path, previous: str | None, commit: str, timeout: float  # noqa: ASYNC109
) -> tuple[set[str] | None, str | None]:
    """The paths added, modified, renamed or deleted from `previous` to `commit` (trees are
    compared, so a force-push diffs correctly), or None and why every file must be read."""
    if previous is None:
        return None, "first sync"
    if not _COMMIT.match(previous):
        return None, "no previous commit"
    if previous == commit:
        return set(), None
    try:
        await _git("cat-file", "-e", f"{previous}^{{commit}}", cwd=directory, timeout=timeout)
    except GitError:
        return None, "previous commit not in the cache"
    names = await _git(
        "diff", "--name-status", "--no-renames", "-z", previous, commit,
        cwd=directory, timeout=timeout,
    )  # fmt: skip
    fields = [field for field in names.split("\0") if field]
    return set(fields[1::2]), None


def cache_directory(data_dir: Path, source_id: str) -> Path:
    """Where a source's clone is kept between syncs."""
    return data_dir / "git" / source_id


def drop_cache(data_dir: Path, source_id: str) -> None:
    """Remove a source's clone (the source is deleted)."""
    directory = cache_directory(data_dir, source_id)
    shutil.rmtree(directory, ignore_errors=True)
    (directory.parent / f"{directory.name}.lock").unlink(missing_ok=True)


def source_uri(url: str, path: str) -> str:
    return f"git+{url}#{path}"


def source_prefix(url: str) -> str:
    return f"git+{url}#"
