"""Markdown: ATX and setext headings, fenced code blocks, paragraphs, YAML front matter."""

from __future__ import annotations

import re

from lorebase.knowledge.extract.base import Block, Extracted, paragraph_blocks

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of every line, `end` excluding the newline."""
    spans = []
    position = 0
    for line in text.split("\n"):
        spans.append((position, position + len(line)))
        position += len(line) + 1
    return spans


def parse_markdown(text: str, *, format: str = "markdown", page: int | None = None) -> Extracted:
    """Blocks for Markdown source; `text` is kept verbatim so offsets point into it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    spans = _lines(text)
    blocks: list[Block] = []
    pending_start: int | None = None  # start of the running paragraph region
    title: str | None = None
    metadata: dict[str, object] = {}

    def flush(until: int) -> None:
        nonlocal pending_start
        if pending_start is not None and until > pending_start:
            blocks.extend(paragraph_blocks(text, pending_start, until, page=page))
        pending_start = None

    index = 0
    paragraph_may_start = True  # the previous line was blank or ended a block
    if spans and text[spans[0][0] : spans[0][1]].strip() == "---":
        # YAML front matter: kept as text, its `title:` used as the document title.
        for closing in range(1, min(len(spans), 200)):
            line = text[spans[closing][0] : spans[closing][1]].strip()
            if line in ("---", "..."):
                front = text[spans[1][0] : spans[closing][0]]
                match = re.search(r"^title:\s*['\"]?(.+?)['\"]?\s*$", front, re.MULTILINE)
                if match:
                    title = match.group(1)
                metadata["front_matter"] = True
                blocks.append(Block("text", spans[0][0], spans[closing][1], page=page))
                index = closing + 1
                break

    while index < len(spans):
        start, end = spans[index]
        line = text[start:end]
        fence = _FENCE.match(line)
        if fence:
            flush(start)
            marker = fence.group(1)
            language = fence.group(2).strip().lower() or None
            closing = index + 1
            while closing < len(spans):
                candidate = text[spans[closing][0] : spans[closing][1]].strip()
                if candidate.startswith(marker[0] * len(marker)) and not candidate.strip(marker[0]):
                    break
                closing += 1
            last = min(closing, len(spans) - 1)
            blocks.append(Block("code", start, spans[last][1], page=page, language=language))
            index = last + 1
            paragraph_may_start = True
            continue
        atx = _ATX.match(line)
        if atx:
            flush(start)
            heading = (atx.group(2) or "").strip()
            level = len(atx.group(1))
            blocks.append(Block("heading", start, end, level=level, page=page, title=heading))
            if title is None and level == 1 and heading:
                title = heading
            index += 1
            paragraph_may_start = True
            continue
        if (
            index + 1 < len(spans)
            and line.strip()
            and paragraph_may_start
            and _SETEXT.match(text[spans[index + 1][0] : spans[index + 1][1]])
            and not line.lstrip().startswith(("-", "*", "+", "|", ">"))
        ):
            # "Title\n=====" — only when the underlined line is a paragraph of its own.
            flush(start)
            marker = text[spans[index + 1][0] : spans[index + 1][1]].strip()
            level = 1 if marker.startswith("=") else 2
            heading = line.strip()
            blocks.append(
                Block("heading", start, spans[index + 1][1], level=level, page=page, title=heading)
            )
            if title is None and level == 1:
                title = heading
            index += 2
            paragraph_may_start = True
            continue
        if pending_start is None:
            pending_start = start
        paragraph_may_start = not line.strip()
        index += 1
    flush(len(text))
    return Extracted(text=text, blocks=blocks, format=format, title=title, metadata=metadata)


def extract_markdown(data: str) -> Extracted:
    return parse_markdown(data)
