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


class _Parser:
    """One pass over the lines: each `_at_*` step consumes a construct starting at line
    `index` and returns the next index, or None when the line does not start one."""

    def __init__(self, text: str, page: int | None) -> None:
        self.text = text
        self.page = page
        self.spans = _lines(text)
        self.blocks: list[Block] = []
        self.title: str | None = None
        self.metadata: dict[str, object] = {}
        self._pending: int | None = None  # start of the running paragraph region
        self._paragraph_may_start = True  # the previous line was blank or ended a block

    def line(self, index: int) -> str:
        start, end = self.spans[index]
        return self.text[start:end]

    def run(self) -> None:
        index = self._front_matter()
        while index < len(self.spans):
            for step in (self._at_fence, self._at_atx, self._at_setext):
                after = step(index)
                if after is not None:
                    index = after
                    self._paragraph_may_start = True
                    break
            else:
                if self._pending is None:
                    self._pending = self.spans[index][0]
                self._paragraph_may_start = not self.line(index).strip()
                index += 1
        self._flush(len(self.text))

    def _flush(self, until: int) -> None:
        if self._pending is not None and until > self._pending:
            self.blocks.extend(paragraph_blocks(self.text, self._pending, until, page=self.page))
        self._pending = None

    def _heading(self, start: int, end: int, level: int, heading: str) -> None:
        self._flush(start)
        self.blocks.append(Block("heading", start, end, level=level, page=self.page, title=heading))
        if self.title is None and level == 1 and heading:
            self.title = heading

    def _front_matter(self) -> int:
        """YAML front matter: kept as text, its `title:` used as the document title."""
        if not self.spans or self.line(0).strip() != "---":
            return 0
        for closing in range(1, min(len(self.spans), 200)):
            if self.line(closing).strip() in ("---", "..."):
                front = self.text[self.spans[1][0] : self.spans[closing][0]]
                match = re.search(r"^title:\s*['\"]?(.+?)['\"]?\s*$", front, re.MULTILINE)
                if match:
                    self.title = match.group(1)
                self.metadata["front_matter"] = True
                end = self.spans[closing][1]
                self.blocks.append(Block("text", self.spans[0][0], end, page=self.page))
                return closing + 1
        return 0

    def _at_fence(self, index: int) -> int | None:
        fence = _FENCE.match(self.line(index))
        if not fence:
            return None
        start = self.spans[index][0]
        self._flush(start)
        marker = fence.group(1)
        language = fence.group(2).strip().lower() or None
        closing = index + 1
        while closing < len(self.spans):
            candidate = self.line(closing).strip()
            if candidate.startswith(marker[0] * len(marker)) and not candidate.strip(marker[0]):
                break
            closing += 1
        last = min(closing, len(self.spans) - 1)
        end = self.spans[last][1]
        self.blocks.append(Block("code", start, end, page=self.page, language=language))
        return last + 1

    def _at_atx(self, index: int) -> int | None:
        atx = _ATX.match(self.line(index))
        if not atx:
            return None
        start, end = self.spans[index]
        self._heading(start, end, len(atx.group(1)), (atx.group(2) or "").strip())
        return index + 1

    def _at_setext(self, index: int) -> int | None:
        """A setext heading (a line underlined by `===` or `---`), only when the underlined
        line is a paragraph of its own."""
        line = self.line(index)
        if not (
            index + 1 < len(self.spans)
            and line.strip()
            and self._paragraph_may_start
            and _SETEXT.match(self.line(index + 1))
            and not line.lstrip().startswith(("-", "*", "+", "|", ">"))
        ):
            return None
        level = 1 if self.line(index + 1).strip().startswith("=") else 2
        self._heading(self.spans[index][0], self.spans[index + 1][1], level, line.strip())
        return index + 2


def parse_markdown(text: str, *, format: str = "markdown", page: int | None = None) -> Extracted:
    """Blocks for Markdown source; `text` is kept verbatim so offsets point into it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    parser = _Parser(text, page)
    parser.run()
    return Extracted(
        text=text,
        blocks=parser.blocks,
        format=format,
        title=parser.title,
        metadata=parser.metadata,
    )


def extract_markdown(data: str) -> Extracted:
    return parse_markdown(data)
