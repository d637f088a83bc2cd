"""Structure-aware chunking with token budgets fitted to the embedding model.

Chunks are contiguous spans of the extracted text (so `char_start`/`char_end` point into the
stored content). Headings start new chunks and give each chunk its `section_path`; fenced code
blocks and top-level definitions of source files stay whole when they fit; paragraphs that do
not fit are cut at sentences, then words; consecutive chunks of one section share an overlap
of whole sentences.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lorebase.knowledge.extract.base import Block, Extracted
from lorebase.knowledge.extract.code import code_blocks, symbol_of

TokenCounter = Callable[[str], int]

# A sentence ends at . ! ? (optionally followed by a closing quote or bracket) before space,
# or at a line break (list items, table rows, short lines).
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])[\"')\]]*\s+|\n+")


@dataclass(frozen=True, slots=True)
class ChunkingConfig:
    max_tokens: int
    overlap_tokens: int
    min_tokens: int  # a chunk smaller than this absorbs the next section instead of ending


def fit_to_embedder(
    max_input_tokens: int, *, preferred_tokens: int = 400, overlap_ratio: float = 0.125
) -> ChunkingConfig:
    """Chunk sizes for a model that reads at most `max_input_tokens` (minus special tokens)."""
    max_tokens = max(16, min(preferred_tokens, max_input_tokens - 8))
    return ChunkingConfig(
        max_tokens=max_tokens,
        overlap_tokens=int(max_tokens * overlap_ratio),
        min_tokens=max_tokens // 8,
    )


def approximate_tokens(text: str) -> int:
    """A conservative count for embedders that do not expose their tokenizer."""
    return len(text.encode("utf-8")) // 3 + 1


@dataclass(slots=True)
class Chunk:
    index: int
    text: str
    start: int
    end: int
    tokens: int
    section_path: list[str]
    kind: str  # text | code | mixed
    page: int | None = None
    page_end: int | None = None
    language: str | None = None
    symbol: str | None = None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "chunk_index": self.index,
            "section_path": self.section_path,
            "char_start": self.start,
            "char_end": self.end,
            "tokens": self.tokens,
            "kind": self.kind,
        }
        if self.page is not None:
            meta["page"] = self.page
            meta["page_end"] = self.page_end
        if self.language:
            meta["language"] = self.language
        if self.symbol:
            meta["symbol"] = self.symbol
        return meta


@dataclass(slots=True)
class _Unit:
    start: int
    end: int
    tokens: int
    kind: str  # heading | text | code
    section: tuple[str, ...]
    boundary: bool = False  # a new section starts here
    page: int | None = None
    language: str | None = None
    symbol: str | None = None


@dataclass
class _Chunker:
    doc: Extracted
    count: TokenCounter
    config: ChunkingConfig
    units: list[_Unit] = field(default_factory=list)

    # --- splitting -------------------------------------------------------------------------

    def _spans(self, start: int, end: int, pattern: re.Pattern[str]) -> Iterator[tuple[int, int]]:
        text = self.doc.text
        position = start
        for match in pattern.finditer(text, start, end):
            if match.start() > position and text[position : match.start()].strip():
                yield position, match.start()
            position = match.end()
        if position < end and text[position:end].strip():
            yield position, end

    def _hard_split(self, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        """Cut a span with no usable boundary (a giant word) by binary search on length."""
        text = self.doc.text
        while start < end:
            low, high = start + 1, end
            while low < high:
                middle = (low + high + 1) // 2
                if self.count(text[start:middle]) <= self.config.max_tokens:
                    low = middle
                else:
                    high = middle - 1
            yield start, low, self.count(text[start:low])
            start = low

    def _pack(
        self,
        pieces: list[tuple[int, int]],
        fallback: Callable[[int, int], list[tuple[int, int]]],
        budget: int | None = None,
    ) -> Iterator[tuple[int, int, int]]:
        """Greedily join consecutive pieces up to `budget` tokens (default the chunk size);
        pieces over the chunk size go through `fallback`."""
        text = self.doc.text
        budget = budget or self.config.max_tokens
        current: tuple[int, int] | None = None
        current_tokens = 0
        for start, end in pieces:
            tokens = self.count(text[start:end])
            if tokens > self.config.max_tokens:
                if current is not None:
                    yield current[0], current[1], current_tokens
                    current, current_tokens = None, 0
                yield from self._pack_fallback(start, end, fallback)
                continue
            if current is not None and current_tokens + tokens <= budget:
                current = (current[0], end)
                current_tokens += tokens
            else:
                if current is not None:
                    yield current[0], current[1], current_tokens
                current, current_tokens = (start, end), tokens
        if current is not None:
            yield current[0], current[1], current_tokens

    def _pack_fallback(
        self, start: int, end: int, fallback: Callable[[int, int], list[tuple[int, int]]]
    ) -> Iterator[tuple[int, int, int]]:
        pieces = fallback(start, end)
        if len(pieces) <= 1:
            yield from self._hard_split(start, end)
        else:
            yield from self._pack(pieces, lambda a, b: [])

    def _split_text(self, start: int, end: int) -> Iterator[tuple[int, int, int]]:
        sentences = list(self._spans(start, end, _SENTENCE_END))
        words = re.compile(r"\s+")
        # Leave room for the overlap the next chunk carries over from this one.
        budget = max(1, self.config.max_tokens - self.config.overlap_tokens)
        yield from self._pack(sentences, lambda a, b: list(self._spans(a, b, words)), budget)

    def _split_code(
        self, start: int, end: int, language: str | None, depth: int = 0
    ) -> Iterator[tuple[int, int, int]]:
        """Oversize code: nested definitions first (class -> methods), then groups of lines."""
        text = self.doc.text
        if depth < 4:
            nested = code_blocks(text, start, end, language=language)
            if len(nested) > 1:
                for block in nested:
                    tokens = self.count(text[block.start : block.end])
                    if tokens <= self.config.max_tokens:
                        yield block.start, block.end, tokens
                    else:
                        yield from self._split_code(block.start, block.end, language, depth + 1)
                return
            body = _body_span(text, start, end)
            if body is not None and depth < 4:
                nested = code_blocks(text, body[0], body[1], language=language)
                if len(nested) > 1:
                    head_end = nested[0].start
                    if text[start:head_end].strip():
                        yield from self._pack([(start, head_end)], self._lines)
                    yield from self._split_code(nested[0].start, end, language, depth + 1)
                    return
        yield from self._pack(self._lines(start, end), lambda a, b: [])

    def _lines(self, start: int, end: int) -> list[tuple[int, int]]:
        return list(self._spans(start, end, re.compile(r"\n")))

    # --- units -----------------------------------------------------------------------------

    def build_units(self) -> None:
        text = self.doc.text
        headings: list[tuple[int, str]] = []
        section: tuple[str, ...] = ()
        is_code_file = self.doc.format == "code"
        for block in self.doc.blocks:
            body = text[block.start : block.end]
            if not body.strip():
                continue
            boundary = False
            if block.kind == "heading":
                while headings and headings[-1][0] >= block.level:
                    headings.pop()
                headings.append((block.level, block.title or body.strip("# \n")))
                section = tuple(title for _, title in headings)
                boundary = True
            elif block.section is not None and block.section != section:
                section = block.section
                boundary = True
            elif is_code_file:
                section = (block.title,) if block.title else ()
                boundary = True
            tokens = self.count(body)
            common: dict[str, Any] = {
                "section": section,
                "page": block.page,
                "language": block.language,
                "symbol": block.title if block.kind == "code" else None,
            }
            if tokens <= self.config.max_tokens:
                kind = "heading" if block.kind == "heading" else block.kind
                self.units.append(_Unit(block.start, block.end, tokens, kind, **common))
                self.units[-1].boundary = boundary
                continue
            pieces = (
                self._split_code(block.start, block.end, block.language)
                if block.kind == "code"
                else self._split_text(block.start, block.end)
            )
            for number, (start, end, piece_tokens) in enumerate(pieces):
                kind = "code" if block.kind == "code" else "text"
                self.units.append(_Unit(start, end, piece_tokens, kind, **common))
                self.units[-1].boundary = boundary and number == 0
                if kind == "code":
                    self.units[-1].symbol = _first_symbol(text, start, end) or common["symbol"]

    # --- packing ---------------------------------------------------------------------------

    def _overlap(self, previous: list[_Unit]) -> _Unit | None:
        """The trailing sentences of the previous chunk, up to the overlap budget."""
        if not previous or self.config.overlap_tokens <= 0:
            return None
        last = previous[-1]
        if last.kind != "text":
            return None
        sentences = list(self._spans(last.start, last.end, _SENTENCE_END))
        if len(sentences) < 2:
            return None
        text = self.doc.text
        start, tokens = None, 0
        for sentence_start, sentence_end in reversed(sentences[1:]):
            sentence_tokens = self.count(text[sentence_start:sentence_end])
            if tokens + sentence_tokens > self.config.overlap_tokens:
                break
            start, tokens = sentence_start, tokens + sentence_tokens
        if start is None:
            return None
        return _Unit(start, last.end, tokens, "overlap", last.section, page=last.page)

    def chunks(self) -> list[Chunk]:
        self.build_units()
        result: list[Chunk] = []
        current: list[_Unit] = []
        tokens = 0
        for unit in self.units:
            if current:
                last_page = current[-1].page
                page_changed = (
                    unit.page is not None and last_page is not None and unit.page != last_page
                )
                # A small fresh section (no overlap carried in) absorbs the next one rather
                # than becoming a fragment; a section's tail always ends at the next heading.
                small = current[0].kind != "overlap" and tokens < self.config.min_tokens
                section_break = (unit.boundary or page_changed) and not small
                only_headings = all(u.kind in ("heading", "overlap") for u in current)
                too_big = tokens + unit.tokens > self.config.max_tokens
                if (section_break and not only_headings) or too_big:
                    # Headings belong with what follows them, never at a chunk's end.
                    carried: list[_Unit] = []
                    while len(current) > 1 and current[-1].kind == "heading":
                        carried.insert(0, current.pop())
                    self._emit(result, current, sum(u.tokens for u in current))
                    overlap = None if unit.boundary or carried else self._overlap(current)
                    if overlap and overlap.tokens + unit.tokens <= self.config.max_tokens:
                        current = [overlap]
                    else:
                        current = carried
                    tokens = sum(u.tokens for u in current)
            current.append(unit)
            tokens += unit.tokens
        if current:
            self._emit(result, current, tokens)
        return result

    def _emit(self, result: list[Chunk], units: list[_Unit], tokens: int) -> None:
        text = self.doc.text
        start, end = units[0].start, units[-1].end
        body = text[start:end]
        stripped = body.strip()
        if not stripped:
            return
        start += len(body) - len(body.lstrip())
        end = start + len(stripped)
        real = [u for u in units if u.kind != "overlap"] or units
        first = next((u for u in real if u.kind != "heading"), real[0])
        kinds = {u.kind for u in real if u.kind != "heading"} or {"text"}
        pages = [u.page for u in units if u.page is not None]
        symbols = [u.symbol for u in real if u.symbol]
        result.append(
            Chunk(
                index=len(result),
                text=stripped,
                start=start,
                end=end,
                tokens=tokens,
                section_path=list(first.section),
                kind=kinds.pop() if len(kinds) == 1 else "mixed",
                page=min(pages) if pages else None,
                page_end=max(pages) if pages else None,
                language=first.language,
                symbol=symbols[0] if symbols else None,
            )
        )


def _first_symbol(text: str, start: int, end: int) -> str | None:
    for line in text[start:end].split("\n"):
        stripped = line.strip()
        if stripped and not stripped.startswith(("//", "#", "/*", "*", "@", "--")):
            return symbol_of(stripped)
    return None


def _body_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The indented body of a definition (everything after its first line)."""
    newline = text.find("\n", start, end)
    if newline == -1:
        return None
    return newline + 1, end


def chunk_document(
    doc: Extracted, *, count_tokens: TokenCounter, config: ChunkingConfig
) -> list[Chunk]:
    """Blocking (tokenizer calls): call it through `asyncio.to_thread` for large documents."""
    return _Chunker(doc, count_tokens, config).chunks()


__all__ = [
    "Block",
    "Chunk",
    "ChunkingConfig",
    "approximate_tokens",
    "chunk_document",
    "fit_to_embedder",
]
