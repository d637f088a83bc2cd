"""The default answerer with the local embedding model (as `open_context` wires it): sentences
chosen by meaning and Snowball-stemmed words, verbatim citations, "no answer" only when
nothing in the sources is close."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from lorebase.answering.synthesis import AnswerRequest, Passage, synthesize_answer
from lorebase.context import AppContext
from lorebase.providers.base import format_sources
from lorebase.providers.extractive import (
    NO_ANSWER,
    ExtractiveChatModel,
    SentenceVectors,
    sentences,
)

PUMP = (
    "The QX-7702 circulation pump moves coolant through the secondary loop. It is rated for "
    "continuous duty at up to 80 degrees. To keep the warranty valid, service it every 6 "
    "months: replace the seals and check the impeller for wear."
)
OTHER = "The QX-7100 valve controller has no moving parts and needs no routine maintenance."


async def _answer(ctx: AppContext, question: str, texts: list[str]) -> tuple[str, list[str]]:
    passages = [Passage(uuid.uuid4(), text) for text in texts]
    result = await synthesize_answer(
        AnswerRequest(
            llm=ctx.llm, question=question, passages=passages, budget_tokens=2000, max_tokens=256
        )
    )
    by_id = {p.id: p.text for p in passages}
    for result_id, quote in result.citations:
        assert " ".join(quote.split()) in " ".join(by_id[result_id].split())  # verbatim
    return result.text, [by_id[result_id] for result_id, _ in result.citations]


async def test_an_inflected_question_is_answered_with_a_verbatim_citation(
    ctx: AppContext,
) -> None:
    assert isinstance(ctx.llm, ExtractiveChatModel)  # the offline default
    text, cited = await _answer(ctx, "How often should the QX-7702 be serviced?", [PUMP, OTHER])
    assert text != NO_ANSWER
    assert "service it every 6 months" in text
    assert cited
    assert cited[0] == PUMP


async def test_a_paraphrase_without_shared_words_finds_the_sentence(ctx: AppContext) -> None:
    text, cited = await _answer(
        ctx,
        "What temperature can the pump run at all day?",
        [PUMP, OTHER],
    )
    assert "rated for continuous duty at up to 80 degrees" in text
    assert cited[0] == PUMP


async def test_unrelated_sources_give_no_answer(ctx: AppContext) -> None:
    text, cited = await _answer(ctx, "Who wrote the novel Moby-Dick?", [PUMP, OTHER])
    assert text == NO_ANSWER
    assert cited == []


async def test_the_model_scores_by_meaning_only_with_an_embedder(ctx: AppContext) -> None:
    prompt = format_sources("What temperature can the pump run at all day?", [PUMP, OTHER])
    by_words = await ExtractiveChatModel().complete(prompt)
    by_meaning = await ExtractiveChatModel(ctx.embedder).complete(prompt)
    assert "80 degrees" in by_meaning.text
    assert by_words.text != by_meaning.text or "80 degrees" in by_words.text


class _Counting:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.texts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.embedder, name)

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts += len(texts)
        return list(await self.embedder.embed_batch(texts))


async def test_sentence_vectors_are_embedded_once_and_the_cache_is_bounded(
    ctx: AppContext,
) -> None:
    counting = _Counting(ctx.embedder)
    model = ExtractiveChatModel(counting)  # type: ignore[arg-type]
    prompt = format_sources("How often should the QX-7702 be serviced?", [PUMP, OTHER])
    first = await model.complete(prompt)
    embedded = counting.texts
    assert embedded == 1 + len(sentences(PUMP)) + len(sentences(OTHER))
    again = await model.complete(
        format_sources("What temperature can the pump run at all day?", [PUMP, OTHER])
    )
    assert counting.texts == embedded + 1  # only the new question
    assert "every 6 months" in first.text
    assert "80 degrees" in again.text

    small = SentenceVectors(counting, capacity=2)  # type: ignore[arg-type]
    vectors = await small.embed(["one.", "two.", "three.", "one."])
    assert len(vectors) == 4
    assert list(vectors[0]) == list(vectors[3])
    assert len(small) == 2
