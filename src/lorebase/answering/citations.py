"""Citations that can be trusted: every quote is text of the passage it points at.

An answer cites with `[n]` markers (numbered sources). For each marker the quote is, in order:
a double-quoted span of the cited sentence that occurs in passage n; the cited sentence itself
if passage n contains it; else the sentence of passage n that shares most content words with
the claim, when it shares enough. The quote returned is always copied out of the passage (so
it matches verbatim); markers that cannot be supported this way are dropped and counted.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

_MARKER = re.compile(r"\[(\d{1,3})\]")
_QUOTED = re.compile(r"[\"\u201c\u201d]([^\"\u201c\u201d]{8,}?)[\"\u201c\u201d]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP_WORDS = (
    "a an and are as at be by for from has have in is it its of on or that the this to was "
    "were which with not no can may will do does"
)
_STOP = frozenset(_STOP_WORDS.split())
# A derived quote must share at least this share of the claim's content words.
MIN_OVERLAP = 0.5
MAX_QUOTE_CHARS = 400


@dataclass(frozen=True)
class Citation:
    number: int  # 1-based source number
    quote: str


@dataclass
class CitationCheck:
    citations: list[Citation] = field(default_factory=list)
    dropped: int = 0  # markers whose quote could not be found in the cited passage
    out_of_range: int = 0  # markers naming a source that was not given


def _fold(char: str) -> str:
    return {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " "}.get(
        char, char
    )


def _normalise(text: str) -> tuple[str, list[int]]:
    """Lower-cased, whitespace-collapsed text and, per output char, its index in `text`."""
    out: list[str] = []
    index: list[int] = []
    previous_space = True
    for position, raw in enumerate(unicodedata.normalize("NFC", text)):
        char = _fold(raw)
        if char.isspace():
            if previous_space:
                continue
            char = " "
            previous_space = True
        else:
            previous_space = False
        out.append(char.lower())
        index.append(position)
    while out and out[-1] == " ":
        out.pop()
        index.pop()
    return "".join(out), index


def find_verbatim(passage: str, quote: str) -> str | None:
    """The span of `passage` equal to `quote` up to case and whitespace, or None."""
    needle, _ = _normalise(quote.strip(" \t\n.,;:"))
    if len(needle) < 8:
        return None
    source = unicodedata.normalize("NFC", passage)
    haystack, index = _normalise(source)
    at = haystack.find(needle)
    if at < 0:
        return None
    return source[index[at] : index[at + len(needle) - 1] + 1]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _content_words(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP and len(w) > 1}


def _best_sentence(passage: str, claim: str) -> str | None:
    claim_words = _content_words(claim)
    if not claim_words:
        return None
    best, best_score = None, 0.0
    for sentence in split_sentences(passage):
        score = len(claim_words & _content_words(sentence)) / len(claim_words)
        if score > best_score:
            best, best_score = sentence, score
    if best is None or best_score < MIN_OVERLAP:
        return None
    return best[:MAX_QUOTE_CHARS]


_LEADING_MARKERS = re.compile(r"^((?:\s*\[\d{1,3}\])+)\s*")


def _cited_sentences(answer: str) -> list[str]:
    """Sentences of the answer; markers written after a sentence's full stop ("... call. [1]")
    belong to the sentence before them."""
    sentences: list[str] = []
    for sentence in split_sentences(answer):
        match = _LEADING_MARKERS.match(sentence)
        if match and sentences:
            sentences[-1] += " " + match.group(1).strip()
            sentence = sentence[match.end() :]
        if sentence.strip():
            sentences.append(sentence)
    return sentences


def _claims(answer: str) -> list[tuple[str, list[int]]]:
    """(claim text without markers, cited numbers) for each sentence that cites."""
    claims: list[tuple[str, list[int]]] = []
    for sentence in _cited_sentences(answer):
        numbers = [int(n) for n in _MARKER.findall(sentence)]
        if numbers:
            claims.append((sentence, numbers))
    return claims


def check_citations(answer: str, passages: Sequence[str]) -> CitationCheck:
    """Turn the answer's `[n]` markers into verified (number, quote) citations."""
    check = CitationCheck()
    seen: set[tuple[int, str]] = set()
    for sentence, numbers in _claims(answer):
        claim = _MARKER.sub("", sentence).strip()
        quoted = _QUOTED.findall(sentence)
        for number in dict.fromkeys(numbers):
            if not 1 <= number <= len(passages):
                check.out_of_range += 1
                continue
            passage = passages[number - 1]
            quote = next(
                (hit for q in quoted if (hit := find_verbatim(passage, q)) is not None), None
            )
            if quote is None:
                quote = find_verbatim(passage, claim)
            if quote is None:
                quote = _best_sentence(passage, claim)
            quote = quote[:MAX_QUOTE_CHARS] if quote is not None else None
            if quote is None or quote not in passage:
                check.dropped += 1
                continue
            if (number, quote) not in seen:
                seen.add((number, quote))
                check.citations.append(Citation(number, quote))
    return check
