"""Files and folders from the local disk (`lorebase ingest`), honouring `.gitignore`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pathspec

ALWAYS_SKIPPED = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv"})


def collect_files(paths: Iterable[Path]) -> list[tuple[Path, str]]:
    """(path, document name) for every file named and every file under every folder named
    (recursively), except what a `.gitignore` in that folder tree excludes and
    version-control/dependency folders. Files named explicitly are always kept. A folder's
    files are named by their path from the folder's name (`docs/guide.md`)."""
    found: dict[Path, str] = {}
    for path in paths:
        if path.is_file():
            found.setdefault(path.resolve(), path.name)
        elif path.is_dir():
            root = path.resolve()
            for file in _walk(root):
                found.setdefault(file, (Path(root.name) / file.relative_to(root)).as_posix())
    return list(found.items())


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    specs: list[tuple[Path, pathspec.GitIgnoreSpec]] = []

    def ignored(path: Path, *, is_dir: bool) -> bool:
        for base, spec in specs:
            try:
                relative = path.relative_to(base).as_posix()
            except ValueError:
                continue
            if spec.match_file(relative + "/" if is_dir else relative):
                return True
        return False

    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(directory)
        # Specs of folders we left are dropped; a folder's own .gitignore applies below it.
        specs[:] = [(base, spec) for base, spec in specs if here.is_relative_to(base)]
        gitignore = here / ".gitignore"
        if gitignore.is_file():
            lines = gitignore.read_text(errors="replace").splitlines()
            specs.append((here, pathspec.GitIgnoreSpec.from_lines(lines)))
        dirnames[:] = sorted(
            name
            for name in dirnames
            if name not in ALWAYS_SKIPPED
            and not (here / name).is_symlink()
            and not ignored(here / name, is_dir=True)
        )
        for name in sorted(filenames):
            path = here / name
            if name == ".gitignore" or path.is_symlink() or ignored(path, is_dir=False):
                continue
            files.append(path)
    return files
