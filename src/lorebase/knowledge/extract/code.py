"""Source code: one block per top-level definition, with the comments and decorators above it."""

from __future__ import annotations

import itertools
import re

from lorebase.content import language_for as language_for  # re-exported: detect, tests
from lorebase.knowledge.extract.base import Block, Extracted

# A top-level line that names what it defines, for the chunk's metadata.
_SYMBOL = re.compile(
    r"^(?:export\s+)?(?:default\s+)?(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:static\s+)?"
    r"(?:(?:public|private|protected|internal|abstract|final|sealed|open|data|inline)\s+)*"
    r"(?:def|class|function\*?|func|fn|struct|enum|trait|impl|interface|type|module|mod|"
    r"object|record|namespace|const|let|var|macro_rules!)\s+"
    r"(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)"
)
_C_FUNCTION = re.compile(r"^[A-Za-z_][\w\s\*&:<>,]*?\b([A-Za-z_]\w*)\s*\([^;]*$")
_PREFIX_LINE = re.compile(r"^\s*(#(?!include|define|if|endif|else|pragma)|//|/\*|\*|@|--|;)")
_CLOSER = re.compile(r"^(?:[})\]]|(?:end|else|elif|except|finally|catch)\b|#\s*endif)")


def symbol_of(line: str) -> str | None:
    stripped = line.strip()
    match = _SYMBOL.match(stripped) or _C_FUNCTION.match(stripped)
    return match.group(1) if match else None


def _starts_definition(line: str) -> bool:
    if not line or line[0] in " \t":
        return False
    stripped = line.strip()
    return not _CLOSER.match(stripped)


def code_blocks(text: str, start: int, end: int, *, language: str | None) -> list[Block]:
    """Split `text[start:end]` at lines that start a definition at the span's own indentation
    level; comments, decorators and blank lines directly above a definition stay with it."""
    lines: list[tuple[int, int]] = []
    position = start
    while position < end:
        newline = text.find("\n", position, end)
        line_end = end if newline == -1 else newline
        lines.append((position, line_end))
        position = line_end + 1
    if not lines:
        return []
    # The span's own level: the least-indented line that is not a closing bracket/keyword.
    indent = min(
        (
            len(text[a:b]) - len(text[a:b].lstrip())
            for a, b in lines
            if text[a:b].strip() and not _CLOSER.match(text[a:b].strip())
        ),
        default=0,
    )
    boundaries: list[int] = [0]
    header_start: int | None = None  # first line of a comment/decorator run
    for number, (a, b) in enumerate(lines):
        line = text[a:b][indent:] if len(text[a:b]) >= indent else text[a:b].lstrip()
        if not line.strip():
            continue
        if _PREFIX_LINE.match(line) and _starts_definition(line):
            if header_start is None:
                header_start = number
            continue
        if _starts_definition(line) and number > 0:
            cut = header_start if header_start is not None else number
            if cut > boundaries[-1]:
                boundaries.append(cut)
        header_start = None
    boundaries.append(len(lines))
    blocks = []
    for first, last in itertools.pairwise(boundaries):
        if last <= first:
            continue
        span_start, span_end = lines[first][0], lines[last - 1][1]
        if not text[span_start:span_end].strip():
            continue
        symbol = next(
            (
                symbol_of(text[a:b])
                for a, b in lines[first:last]
                if _starts_definition(text[a:b][indent:]) and not _PREFIX_LINE.match(text[a:b])
            ),
            None,
        )
        blocks.append(Block("code", span_start, span_end, title=symbol, language=language))
    return blocks


def extract_code(data: str, *, language: str | None) -> Extracted:
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    blocks = code_blocks(text, 0, len(text), language=language)
    return Extracted(
        text=text, blocks=blocks, format="code", metadata={"language": language or "text"}
    )
