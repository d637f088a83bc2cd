"""Document vocabulary: statuses, semantic versions, and what a version write is and did."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

# `retired`: a source no longer has it (a crawled page gone); kept with its versions, its
# chunks out of search until the page comes back.
DocumentStatus = Literal["pending", "processing", "ready", "failed", "retired"]
Bump = Literal["major", "minor", "patch"]
Outcome = Literal["added", "updated", "unchanged", "retried"]

_VERSION = re.compile(r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})$")


@dataclass(frozen=True, order=True, slots=True)
class Version:
    """A `major.minor.patch` document version."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, value: str) -> Version:
        match = _VERSION.match(value.strip())
        if match is None:
            raise ValueError(f"version must look like 1.2.0, got {value!r}")
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)))

    def bump(self, part: Bump) -> Version:
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


FIRST_VERSION = Version(1, 0, 0)


@dataclass(frozen=True, slots=True)
class NewContent:
    """One version's content: its text (text formats) and/or original bytes, and its
    version metadata (format, language, source) that tells the indexer how to read it."""

    content_hash: str
    size_bytes: int
    mime_type: str | None
    text: str | None = None
    raw: bytes | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Written:
    """What `write_version` did. `version` is None when the content was already there."""

    document: dict[str, Any]
    version: dict[str, Any] | None
    outcome: Outcome

    @property
    def to_index(self) -> dict[str, Any] | None:
        """The version an indexing job must process (the document waits as `pending`)."""
        return self.version if self.document["status"] == "pending" else None


@dataclass(frozen=True, slots=True)
class LatestVersion:
    """A document locked for update and one of its versions, as an indexer sees them."""

    document: dict[str, Any] | None
    version: dict[str, Any] | None

    @property
    def skipped(self) -> str | None:
        """Why the version must not be indexed (deleted, or no longer the latest), or None."""
        if self.document is None or self.version is None:
            return "the document was deleted"
        if self.document["version"] != self.version["version"]:
            return f"superseded by version {self.document['version']}"
        return None
