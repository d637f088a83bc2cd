"""`extractive`: the default answerer, with no model. It reads a `format_sources` prompt and
answers with the sentences of the numbered sources that best match the question (lexical
overlap weighted by rarity), each followed by its `[n]` citation; when none matches it says
the sources do not contain the answer. Honest and instant, never fluent."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from lorebase.providers.base import Completion, Message, ProviderSettings, Source, parse_sources

PROVIDER = "extractive"
MODEL_ID = "extractive"
NO_ANSWER = "The provided sources do not contain an answer to the question."
MAX_SENTENCES = 3
# A sentence must cover this share of the question's (rarity-weighted) terms...
MIN_COVERAGE = 0.3
# ...and the ones after the best must score at least this fraction of it.
RELATIVE_TO_BEST = 0.6
MAX_SENTENCE_CHARS = 600

_STOPWORD_TEXT = """
a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in
into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own same she should so some such than that the their
theirs them themselves then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your yours
yourself yourselves tell explain describe please give list show find get know according
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_LINE_ITEM = re.compile(r"^\s*(#{1,6}\s|[-*+]\s|\d+[.)]\s|\|)")
_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "ly", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            return stem + "y" if suffix in ("ies", "ied") else stem
    return word


def terms(text: str) -> set[str]:
    """Content terms of `text`: lower-cased, stop words dropped, crudely stemmed."""
    return {
        _stem(word)
        for word in _WORD.findall(text.lower())
        if word not in _STOPWORDS and (len(word) > 1 or word.isdigit())
    }


def sentences(text: str) -> list[str]:
    """Sentences of a passage; headings, list items and table rows stand alone."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        units: list[str] = []
        for line in block.splitlines():
            if not line.strip():
                continue
            # Headings and table rows end their line; list items may wrap onto the next.
            if _LINE_ITEM.match(line) or not units or units[-1].startswith(("#", "|")):
                units.append(line.strip())
            else:
                units[-1] += " " + line.strip()
        for unit in units:
            out.extend(part.strip() for part in _SENTENCE_END.split(unit) if part.strip())
    return out


@dataclass(frozen=True)
class _Candidate:
    score: float
    source: int
    position: int
    text: str


def answer(question: str, sources: Sequence[Source]) -> str:
    """The best-matching sentences with `[n]` citations, or NO_ANSWER."""
    wanted = terms(question)
    candidates = [
        (source.number, position, sentence, terms(sentence))
        for source in sources
        for position, sentence in enumerate(sentences(source.text))
    ]
    if not wanted or not candidates:
        return NO_ANSWER
    frequency = Counter(term for *_, found in candidates for term in found)
    total = len(candidates)

    def weight(term: str) -> float:
        return math.log(1.0 + total / (frequency[term] or 0.5))

    possible = sum(weight(term) for term in wanted)
    scored = sorted(
        (
            _Candidate(sum(weight(t) for t in wanted & found) / possible, number, position, text)
            for number, position, text, found in candidates
        ),
        key=lambda c: (-c.score, c.source, c.position),
    )
    best = scored[0].score
    if best < MIN_COVERAGE:
        return NO_ANSWER
    picked: list[_Candidate] = []
    seen: set[str] = set()
    for candidate in scored:
        if len(picked) == MAX_SENTENCES or candidate.score < max(
            MIN_COVERAGE, best * RELATIVE_TO_BEST
        ):
            break
        key = " ".join(candidate.text.lower().split())
        if key in seen:
            continue
        seen.add(key)
        picked.append(candidate)
    return " ".join(f"{_clip(c.text)} [{c.source}]" for c in picked)


def _clip(sentence: str) -> str:
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return sentence
    return sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " ..."


class ExtractiveChatModel:
    """A ChatModel with no model: answers `format_sources` prompts by extraction."""

    generative = False

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def model_id(self) -> str:
        return MODEL_ID

    def warm_up(self) -> None:
        """Nothing to load."""

    def _answer(self, messages: Sequence[Message]) -> str:
        parsed = parse_sources(messages)
        if parsed is None:
            return NO_ANSWER
        question, sources = parsed
        return answer(question, sources)

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """The extracted answer (no tokens are spent: usage is zero)."""
        return Completion(text=self._answer(messages), model_id=MODEL_ID)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[str]:
        """The same answer, one cited sentence per delta."""
        text = self._answer(messages)
        pieces = re.split(r"(?<=\])\s(?=\S)", text)
        for index, piece in enumerate(pieces):
            yield piece if index == len(pieces) - 1 else piece + " "


def register(registry: Any) -> None:
    def factory(settings: ProviderSettings) -> ExtractiveChatModel:
        return ExtractiveChatModel()

    registry.register_llm(PROVIDER, factory)
