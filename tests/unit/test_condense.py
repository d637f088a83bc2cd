"""The condensing prompt: recent turns kept, long turns cut, citation markers out; and no
condensing without a generative model (the extractive default)."""

from __future__ import annotations

from lorebase.answering.condense import (
    MAX_TRANSCRIPT_CHARS,
    MAX_TURN_CHARS,
    condense_messages,
    condense_question,
)
from lorebase.providers.extractive import ExtractiveChatModel


def test_transcript_keeps_the_latest_turns_without_markers() -> None:
    turns = [("user", f"old question {i} " + "x" * 900) for i in range(20)]
    turns += [("user", "what is a loop?"), ("assistant", "A loop repeats [1][2].")]
    system, user = condense_messages(turns, "and how do I stop one?")
    prompt = user.content
    assert system.role == "system"
    assert "standalone question" in system.content
    assert "User: what is a loop?\nAssistant: A loop repeats .\n" in prompt
    assert prompt.endswith("Last question: and how do I stop one?")
    assert "old question 0 " not in prompt  # the oldest turns gave way
    assert len(prompt) < MAX_TRANSCRIPT_CHARS + 200


def test_a_long_latest_turn_is_cut_not_dropped() -> None:
    _, user = condense_messages([("assistant", "y" * 10_000)], "why?")
    assert "Assistant: " + "y" * MAX_TURN_CHARS + "\n" in user.content


async def test_extractive_model_does_not_condense() -> None:
    turns = [("user", "what is a loop?"), ("assistant", "A loop repeats [1].")]
    condensed = await condense_question(
        llm=ExtractiveChatModel(), turns=turns, question="and how do I stop one?"
    )
    assert condensed.question == "and how do I stop one?"
    assert (condensed.prompt_tokens, condensed.completion_tokens) == (0, 0)
