"""What every extractor returns: the document's text and its structure as blocks."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from typing import Any, Literal

from charset_normalizer import from_bytes

BlockKind = Literal["heading", "text", "code"]

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class ExtractionError(Exception):
    """The file cannot be read (corrupt, encrypted, empty); the message is shown to users."""


@dataclass(frozen=True, slots=True)
class Block:
    """A span `[start, end)` of `Extracted.text` with its role in the document's structure."""

    kind: BlockKind
    start: int
    end: int
    level: int = 0  # heading level (1 = top)
    page: int | None = None  # 1-based page number (PDF)
    title: str | None = None  # heading text, or the symbol a code block defines
    language: str | None = None  # fenced code blocks and source files
    section: tuple[str, ...] | None = None  # an explicit section path (PDF outline, data keys)


@dataclass(slots=True)
class Extracted:
    """Plain text (stored as the version's content; chunk offsets point into it) + blocks."""

    text: str
    blocks: list[Block]
    format: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def block_text(self, block: Block) -> str:
        return self.text[block.start : block.end]


def paragraph_blocks(text: str, start: int, end: int, *, page: int | None = None) -> list[Block]:
    """Text blocks for the non-blank paragraphs of `text[start:end]` (split on blank lines)."""
    blocks: list[Block] = []
    position = start
    para_start: int | None = None
    para_end = start
    while position < end:
        newline = text.find("\n", position, end)
        line_end = end if newline == -1 else newline
        if text[position:line_end].strip():
            if para_start is None:
                para_start = position
            para_end = line_end
        elif para_start is not None:
            blocks.append(Block("text", para_start, para_end, page=page))
            para_start = None
        position = line_end + 1
    if para_start is not None:
        blocks.append(Block("text", para_start, para_end, page=page))
    return blocks


def decode_text(data: bytes) -> str | None:
    """The bytes as text, or None when they are not text in any common encoding."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError:
                return None
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data[:200_000]).best()
    if best is None or best.encoding is None:
        return None
    try:
        text = data.decode(best.encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    printable = sum(ch.isprintable() or ch in "\n\r\t" for ch in text[:10_000])
    return text if printable >= 0.95 * min(len(text), 10_000) else None
