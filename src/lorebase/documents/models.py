"""Document vocabulary: statuses and semantic versions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DocumentStatus = Literal["pending", "processing", "ready", "failed"]
Bump = Literal["major", "minor", "patch"]

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
