"""What stored content is, shared by `documents` (which writes versions) and `knowledge` (which
reads and indexes them): the content hash, the extraction formats, a file name's language.

A leaf module: it imports nothing from lorebase, so both sides can depend on it.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import Any

BINARY_FORMATS = frozenset({"pdf", "docx"})
FORMATS = frozenset({"markdown", "text", "html", "code", "json", "yaml", "csv", "pdf", "docx"})
TEXT_FORMATS = FORMATS - BINARY_FORMATS
# Formats whose extracted text is the upload itself: only the text is kept. Others keep the
# original bytes too (the extracted text is filled in by the indexing job).
TEXT_AS_IS = frozenset({"markdown", "text", "code"})

LANGUAGES: dict[str, str] = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".tsx": "typescript", ".mts": "typescript", ".cts": "typescript",
    ".go": "go", ".rs": "rust", ".java": "java", ".kt": "kotlin", ".kts": "kotlin",
    ".scala": "scala", ".swift": "swift",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp",
    ".hh": "cpp", ".hxx": "cpp", ".cs": "csharp",
    ".rb": "ruby", ".php": "php", ".lua": "lua", ".r": "r", ".pl": "perl",
    ".sh": "shell", ".bash": "shell", ".zsh": "shell", ".ps1": "powershell",
    ".sql": "sql", ".proto": "protobuf", ".graphql": "graphql", ".tf": "terraform",
    ".toml": "toml", ".ini": "ini", ".cfg": "ini", ".css": "css", ".scss": "css",
    ".vue": "vue", ".svelte": "svelte", ".dart": "dart", ".ex": "elixir", ".exs": "elixir",
    ".erl": "erlang", ".hs": "haskell", ".ml": "ocaml", ".clj": "clojure", ".zig": "zig",
    ".nim": "nim", ".jl": "julia", ".m": "objective-c", ".mm": "objective-c",
}  # fmt: skip
FILENAMES: dict[str, str] = {
    "dockerfile": "dockerfile", "makefile": "make", "gnumakefile": "make",
    "cmakelists.txt": "cmake", "jenkinsfile": "groovy", "vagrantfile": "ruby",
}  # fmt: skip


def sha256(data: bytes | str) -> str:
    """The content hash documents are deduplicated by (hex SHA-256 of the UTF-8 bytes)."""
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def language_for(name: str) -> str | None:
    """The language of a file name, or None when it is not a known source file."""
    path = PurePosixPath(name.lower())
    return FILENAMES.get(path.name) or LANGUAGES.get(path.suffix)


def text_format(document_type: str) -> str:
    """How text of a document type is extracted: the type itself when it is a text format,
    else Markdown (API documents may carry any type slug)."""
    return document_type if document_type in TEXT_FORMATS else "markdown"


def text_metadata(*, name: str, type: str, language: str | None) -> dict[str, Any]:
    """How text written through the API is indexed (a version's metadata): as its type when
    that is a text format, else as Markdown; code in `language` or the file name's."""
    fmt = text_format(type)
    if fmt == "code" and language is None:
        language = language_for(name)
    return {"format": fmt, "language": language, "source": {"source": name}}


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")
