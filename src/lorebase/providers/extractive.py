"""`extractive`: the default answerer, with no generative model. It reads a `format_sources`
prompt and answers with sentences of the numbered sources, each followed by its `[n]`
citation, in the sources' order; when nothing in them is close to the question it says the
sources do not contain the answer. Honest and instant, never fluent.

A sentence's score combines its meaning and its words: the cosine similarity of its vector to
the question's (when an Embedder was given with `use_embedder`, normally the local model that
already embeds queries) and the share of the question's Snowball-stemmed content words it
holds, weighted by rarity. The best sentence of the first source is kept when it is close to
the question or half as good as the best overall (retrieval put that source first), and a
fragment (a lead-in ending with ":" or a few words) is quoted with the sentence after it.
Sentence vectors are kept in an LRU (`SentenceVectors`): passages recur across questions.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import snowballstemmer  # type: ignore[import-untyped]

from lorebase.providers.base import (
    ChatBase,
    ChatOptions,
    Completion,
    Embedder,
    Message,
    ProviderError,
    ProviderSettings,
    Source,
    parse_sources,
)

PROVIDER = "extractive"
MODEL_ID = "extractive"
NO_ANSWER = "The provided sources do not contain an answer to the question."
MAX_SENTENCES = 3
MAX_SOURCES = 5  # sentences are read from the first sources only (they are ranked)
MAX_CANDIDATES = 120
SENTENCE_CACHE = 8192  # sentence vectors held (384 float32 each: about 12 MB)
# Close enough to answer: this cosine similarity, or this share of the (rarity-weighted)
# question terms.
MIN_SIMILARITY = 0.35
MIN_COVERAGE = 0.3
# A sentence's score: cosine and coverage, weighted.
SIMILARITY_WEIGHT = 0.7
COVERAGE_WEIGHT = 0.3
# Sentences after the best must score at least this fraction of it (by words alone: less)...
RELATIVE_TO_BEST = 0.85
LEXICAL_RELATIVE_TO_BEST = 0.6
# ...except the best one of the first source, kept down to this fraction (or when close).
FIRST_SOURCE_RELATIVE = 0.5
FRAGMENT_WORDS = 6
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
often
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_LINE_ITEM = re.compile(r"^\s*(#{1,6}\s|[-*+]\s|\d+[.)]\s|\|)")
_STEMMER = snowballstemmer.stemmer("english")


def terms(text: str) -> set[str]:
    """Content terms of `text`: lower-cased, stop words dropped, Snowball-stemmed."""
    words = [
        word
        for word in _WORD.findall(text.lower())
        if word not in _STOPWORDS and (len(word) > 1 or word.isdigit())
    ]
    return set(_STEMMER.stemWords(words))


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
class Candidate:
    source: int
    position: int
    text: str
    coverage: float = 0.0
    similarity: float | None = None

    @property
    def score(self) -> float:
        if self.similarity is None:
            return self.coverage
        return SIMILARITY_WEIGHT * self.similarity + COVERAGE_WEIGHT * self.coverage

    @property
    def close(self) -> bool:
        near = self.similarity is not None and self.similarity >= MIN_SIMILARITY
        return near or self.coverage >= MIN_COVERAGE


def candidates(question: str, sources: Sequence[Source]) -> list[Candidate]:
    """The sentences of the first sources, with their lexical coverage of the question."""
    found: list[tuple[int, int, str, set[str]]] = []
    for source in sources[:MAX_SOURCES]:
        for position, sentence in enumerate(sentences(source.text)):
            if len(found) < MAX_CANDIDATES:
                found.append((source.number, position, sentence, terms(sentence)))
    wanted = terms(question)
    frequency = Counter(term for *_, held in found for term in held)
    total = len(found)

    def weight(term: str) -> float:
        return math.log(1.0 + total / (frequency[term] or 0.5))

    possible = sum(weight(term) for term in wanted) or 1.0
    return [
        Candidate(number, position, text, sum(weight(t) for t in wanted & held) / possible)
        for number, position, text, held in found
    ]


def with_similarities(
    found: list[Candidate], vectors: Sequence[Sequence[float]]
) -> list[Candidate]:
    """`found` with the cosine of each sentence's vector to the question's (`vectors[0]`;
    the embedder returns unit vectors)."""
    query = vectors[0]
    return [
        Candidate(
            c.source,
            c.position,
            c.text,
            c.coverage,
            sum(a * b for a, b in zip(query, v, strict=False)),
        )
        for c, v in zip(found, vectors[1:], strict=True)
    ]


def choose(found: Sequence[Candidate], by_position: dict[tuple[int, int], str]) -> str:
    """The answer from scored sentences: NO_ANSWER unless one is close to the question."""
    ranked = sorted(found, key=lambda c: (-c.score, c.source, c.position))
    if not ranked or not any(c.close for c in ranked):
        return NO_ANSWER
    best = ranked[0].score
    relative = RELATIVE_TO_BEST if ranked[0].similarity is not None else LEXICAL_RELATIVE_TO_BEST
    picked: list[Candidate] = [ranked[0]]
    # Retrieval ranked the first source first: its best sentence is quoted when it is close
    # or half as good as the best, so an answer does not lose what retrieval found.
    first = next((c for c in ranked if c.source == min(x.source for x in found)), None)
    if (
        first is not None
        and first not in picked
        and first.score > 0
        and (first.close or first.score >= best * FIRST_SOURCE_RELATIVE)
    ):
        picked.append(first)
    seen = {" ".join(c.text.lower().split()) for c in picked}
    for candidate in ranked[1:]:
        if len(picked) >= MAX_SENTENCES or candidate.score < best * relative:
            break
        key = " ".join(candidate.text.lower().split())
        if key not in seen and candidate.close:
            seen.add(key)
            picked.append(candidate)
    picked.sort(key=lambda c: (c.source, c.position))
    return " ".join(f"{_clip(_with_context(c, by_position))} [{c.source}]" for c in picked)


def _with_context(candidate: Candidate, by_position: dict[tuple[int, int], str]) -> str:
    """A fragment (a lead-in ending with ':' or a few words) with the sentence after it."""
    text = candidate.text
    following = by_position.get((candidate.source, candidate.position + 1))
    if following and (text.endswith(":") or len(text.split()) < FRAGMENT_WORDS):
        return f"{text} {following}"
    return text


def _clip(sentence: str) -> str:
    if len(sentence) <= MAX_SENTENCE_CHARS:
        return sentence
    return sentence[:MAX_SENTENCE_CHARS].rsplit(" ", 1)[0] + " ..."


def answer(question: str, sources: Sequence[Source]) -> str:
    """The best-matching sentences by lexical coverage alone, with `[n]` citations."""
    found = candidates(question, sources)
    return choose(found, {(c.source, c.position): c.text for c in found})


class SentenceVectors:
    """An LRU of sentence vectors (float32) in front of an embedder: the passages an answer
    reads come back across questions, so their sentences are embedded once."""

    def __init__(self, embedder: Embedder, capacity: int = SENTENCE_CACHE) -> None:
        self.embedder = embedder
        self.capacity = capacity
        self._vectors: OrderedDict[str, array[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._vectors)

    async def embed(self, texts: Sequence[str]) -> list[Sequence[float]]:
        """The vectors of `texts`, embedding (in one batch) only those not held."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            for text, vector in zip(missing, await self.embedder.embed_batch(missing), strict=True):
                self._vectors[text] = array("f", vector)
        out: list[Sequence[float]] = []
        for text in texts:
            self._vectors.move_to_end(text)
            out.append(self._vectors[text])
        while len(self._vectors) > self.capacity:
            self._vectors.popitem(last=False)
        return out


class ExtractiveChatModel(ChatBase):
    """A ChatModel with no model: answers `format_sources` prompts by extraction."""

    generative = False

    def __init__(self, embedder: Embedder | None = None) -> None:
        self._vectors = SentenceVectors(embedder) if embedder is not None else None

    def use_embedder(self, embedder: Embedder) -> None:
        """Score sentences by meaning with `embedder` (the application's query embedder)."""
        self._vectors = SentenceVectors(embedder)

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def model_id(self) -> str:
        return MODEL_ID

    def warm_up(self) -> None:
        """Nothing to load (the sentence embedder is warmed up by the context)."""

    async def _answer(self, messages: Sequence[Message]) -> str:
        parsed = parse_sources(messages)
        if parsed is None:
            return NO_ANSWER
        question, sources = parsed
        found = candidates(question, sources)
        if self._vectors is not None and found:
            try:
                question_vector = await self._vectors.embedder.embed_batch([question])
                vectors = [*question_vector, *await self._vectors.embed([c.text for c in found])]
            except ProviderError:
                pass  # lexical coverage alone
            else:
                found = with_similarities(found, vectors)
        return choose(found, {(c.source, c.position): c.text for c in found})

    async def _complete_with(self, messages: Sequence[Message], options: ChatOptions) -> Completion:
        """The extracted answer (no tokens are spent: usage is zero)."""
        return Completion(text=await self._answer(messages), model_id=MODEL_ID)

    async def _stream_with(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[str]:
        """The same answer, one cited sentence per delta."""
        text = await self._answer(messages)
        pieces = re.split(r"(?<=\])\s(?=\S)", text)
        for index, piece in enumerate(pieces):
            yield piece if index == len(pieces) - 1 else piece + " "


def register(registry: Any) -> None:
    def factory(settings: ProviderSettings) -> ExtractiveChatModel:
        return ExtractiveChatModel()

    registry.register_llm(PROVIDER, factory)
