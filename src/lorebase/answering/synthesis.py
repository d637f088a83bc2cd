"""Agentic answers: the final passages, packed into a token budget, answered by the configured
chat model with `[n]` markers, and citations checked against the passages they name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from lorebase.answering.citations import check_citations
from lorebase.answering.prompts import NO_ANSWER, answer_messages
from lorebase.providers.base import ChatModel, TokenCounter, collect_warnings


@dataclass(frozen=True)
class Passage:
    id: UUID
    text: str


@dataclass
class Answer:
    text: str
    citations: list[tuple[UUID, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    passages_used: int = 0
    # A fallback provider answered: worth showing, not worth caching.
    degraded: bool = False


def count_tokens(text: str, counter: object | None = None) -> int:
    """Tokens by the model's own tokenizer when it has one, else ~4 characters a token."""
    if isinstance(counter, TokenCounter):
        return counter.count_tokens(text)
    return len(text) // 4 + 1


def pack_passages(
    passages: Sequence[Passage], *, budget_tokens: int, counter: object | None = None
) -> list[Passage]:
    """The leading passages that fit the budget (the first one is cut to fit if needed)."""
    packed: list[Passage] = []
    used = 0
    for passage in passages:
        cost = count_tokens(passage.text, counter)
        if used + cost > budget_tokens:
            if not packed:
                # Keep at least the best passage, cut at a word boundary.
                ratio = budget_tokens / max(cost, 1)
                cut = passage.text[: int(len(passage.text) * ratio)].rsplit(" ", 1)[0]
                packed.append(Passage(passage.id, cut))
            break
        packed.append(passage)
        used += cost
    return packed


def finish_answer(text: str, passages: Sequence[Passage], warnings: list[str]) -> Answer:
    """Check the answer's citations against `passages`; count what had to be dropped."""
    text = text.strip() or NO_ANSWER
    check = check_citations(text, [p.text for p in passages])
    notes = list(warnings)
    if check.dropped:
        notes.append(
            f"{check.dropped} citation(s) dropped: no supporting quote found in the cited passage"
        )
    if check.out_of_range:
        notes.append(f"{check.out_of_range} citation marker(s) named a source that was not given")
    citations = [(passages[c.number - 1].id, c.quote) for c in check.citations]
    return Answer(
        text=text,
        citations=citations,
        warnings=notes,
        passages_used=len(passages),
        degraded=bool(warnings),
    )


def _prepare(request: AnswerRequest) -> list[Passage]:
    return pack_passages(request.passages, budget_tokens=request.budget_tokens, counter=request.llm)


@dataclass(frozen=True)
class AnswerRequest:
    """What an answer is written from: the question, its passages (packed into
    `budget_tokens` of context) and the model with its generation limits."""

    llm: ChatModel
    question: str
    passages: Sequence[Passage]
    budget_tokens: int
    max_tokens: int
    temperature: float = 0.0


async def synthesize_answer(request: AnswerRequest) -> Answer:
    """One answer from the passages (NO_ANSWER without calling a model when there are none).

    Provider errors propagate: the caller decides whether to degrade."""
    if not request.passages:
        return Answer(text=NO_ANSWER)
    used = _prepare(request)
    with collect_warnings() as provider_warnings:
        completion = await request.llm.complete(
            answer_messages(request.question, [p.text for p in used]),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
        )
    warnings = list(dict.fromkeys([*provider_warnings, *completion.warnings]))
    return finish_answer(completion.text, used, warnings)


async def stream_answer(request: AnswerRequest) -> AsyncIterator[str | Answer]:
    """Text deltas as the model writes them, then the checked `Answer` as the last item."""
    if not request.passages:
        yield NO_ANSWER
        yield Answer(text=NO_ANSWER)
        return
    used = _prepare(request)
    parts: list[str] = []
    with collect_warnings() as provider_warnings:
        async for delta in request.llm.stream(
            answer_messages(request.question, [p.text for p in used]),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
        ):
            if delta:
                parts.append(delta)
                yield delta
    text = "".join(parts)
    if not text.strip():
        yield NO_ANSWER
    yield finish_answer(text, used, list(provider_warnings))
