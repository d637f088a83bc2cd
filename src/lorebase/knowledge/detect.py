"""What a file really is, from its bytes first and its name second."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

import puremagic

from lorebase.content import language_for
from lorebase.knowledge.extract.base import decode_text

TEXT_EXTENSIONS: dict[str, str] = {
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown", ".mkd": "markdown",
    ".txt": "text", ".text": "text", ".rst": "text", ".adoc": "text", ".asciidoc": "text",
    ".log": "text", ".org": "text", ".tex": "text",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".json": "json", ".jsonl": "text", ".geojson": "json",
    ".yaml": "yaml", ".yml": "yaml",
    ".csv": "csv", ".tsv": "csv",
}  # fmt: skip
BINARY_EXTENSIONS: dict[str, str] = {".pdf": "pdf", ".docx": "docx"}
# Names that promise a binary format we do not read; text content under them is a lie.
FOREIGN_BINARY = {
    ".doc", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp", ".rtf", ".epub",
    ".zip", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".tar", ".jar", ".whl",
    ".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".ico", ".heic",
    ".mp3", ".mp4", ".wav", ".ogg", ".flac", ".mov", ".avi", ".mkv", ".webm",
    ".exe", ".dll", ".so", ".dylib", ".bin", ".class", ".o", ".a", ".pyc", ".wasm",
    ".sqlite", ".db", ".parquet", ".onnx", ".pt", ".pkl",
}  # fmt: skip
MIME_TYPES = {
    "markdown": "text/markdown", "text": "text/plain", "html": "text/html",
    "json": "application/json", "yaml": "application/yaml", "csv": "text/csv",
    "code": "text/plain", "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}  # fmt: skip


class UnsupportedFile(Exception):
    """The file's type is not supported, or its content contradicts its name."""


@dataclass(frozen=True, slots=True)
class FileType:
    format: str  # markdown | text | html | code | json | yaml | csv | pdf | docx
    mime_type: str
    language: str | None = None  # source files; "tsv" for tab-separated data
    text: str | None = None  # decoded text (newlines normalised) for text formats


def _binary_name(data: bytes) -> str:
    try:
        return str(puremagic.from_string(data[:8192], mime=True)) or "binary data"
    except puremagic.PureError:
        return "binary data"


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def _sniff_text(text: str) -> str:
    head = text[:2048].lstrip().lower()
    if head.startswith(("<!doctype html", "<html")) or "<body" in head:
        return "html"
    if head.startswith(("{", "[")):
        try:
            json.loads(text)
        except ValueError:
            return "text"
        return "json"
    return "text"


def detect_file(name: str, data: bytes) -> FileType:
    """Blocking (decoding, zip inspection): call it through `asyncio.to_thread`."""
    suffix = PurePosixPath(name.lower()).suffix
    if not data.strip():
        raise UnsupportedFile(f"{name} is empty")
    is_pdf = b"%PDF-" in data[:1024]
    is_zip = data.startswith(b"PK\x03\x04")
    if is_pdf or suffix == ".pdf":
        if not is_pdf:
            raise UnsupportedFile(f"{name} is named .pdf but its content is not a PDF")
        if suffix not in ("", ".pdf"):
            raise UnsupportedFile(f"{name} contains a PDF but is named {suffix}")
        return FileType("pdf", MIME_TYPES["pdf"])
    if is_zip or suffix == ".docx":
        if not (is_zip and _is_docx(data)):
            what = (
                "is named .docx but is not a Word document"
                if suffix == ".docx"
                else ("is a ZIP archive, which is not supported")
            )
            raise UnsupportedFile(f"{name} {what}")
        if suffix not in ("", ".docx"):
            raise UnsupportedFile(f"{name} contains a Word document but is named {suffix}")
        return FileType("docx", MIME_TYPES["docx"])
    text = decode_text(data)
    if text is None:
        raise UnsupportedFile(f"{name}: unsupported file type ({_binary_name(data)})")
    if suffix in FOREIGN_BINARY:
        raise UnsupportedFile(f"{name} is named {suffix} but its content is text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    format = TEXT_EXTENSIONS.get(suffix)
    language = language_for(name) if format is None else None
    if format is None and language is not None:
        format = "code"
    if format is None:
        format = _sniff_text(text)
    if (
        format == "json"
        and not text.lstrip().startswith(("{", "[", '"'))
        and not (text.strip()[:1].isdigit() or text.strip() in ("true", "false", "null"))
    ):
        raise UnsupportedFile(f"{name} is named .json but its content is not JSON")
    if format == "html" and "<" not in text[:65536]:
        raise UnsupportedFile(f"{name} is named {suffix} but its content is not HTML")
    if format == "csv" and suffix == ".tsv":
        language = "tsv"
    return FileType(format, MIME_TYPES[format], language=language, text=text)
