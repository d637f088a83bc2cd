"""A follow-up question made standalone: "and how long does it last?" after a turn about
holidays becomes "how long does the paid holiday last?", so retrieval sees what was meant.

Only a generative chat model condenses; the extractive default (no model) searches the last
question as written. Provider errors propagate: the caller decides what a failure means."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lorebase.answering.synthesis import count_tokens
from lorebase.providers.base import ChatModel, Message

CONDENSE_INSTRUCTIONS = (
    "Rewrite the user's last question as one standalone question that can be understood "
    "without the conversation. Keep its language and every name, number and term it needs. "
    "Reply with the question only."
)
MAX_TRANSCRIPT_CHARS = 6000  # the most recent turns, newest kept
MAX_TURN_CHARS = 2000  # a long turn is cut, so the latest one always fits
MAX_QUESTION_CHARS = 4000
CONDENSE_MAX_TOKENS = 200
_MARKER = re.compile(r"\[\d{1,3}\]")


@dataclass(frozen=True)
class Condensed:
    question: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _transcript(turns: Sequence[tuple[str, str]]) -> str:
    """'User: ...' / 'Assistant: ...' lines, the oldest dropped to fit, citation markers out."""
    lines: list[str] = []
    used = 0
    for role, text in reversed(turns):
        said = _MARKER.sub("", text).strip()[:MAX_TURN_CHARS]
        line = f"{'User' if role == 'user' else 'Assistant'}: {said}"
        if used + len(line) > MAX_TRANSCRIPT_CHARS:
            break
        lines.append(line)
        used += len(line)
    return "\n".join(reversed(lines))


def condense_messages(turns: Sequence[tuple[str, str]], question: str) -> list[Message]:
    transcript = _transcript(turns)
    prompt = f"Conversation:\n{transcript}\n\nLast question: {question.strip()}"
    return [Message("system", CONDENSE_INSTRUCTIONS), Message("user", prompt)]


def _clean(text: str) -> str:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return first.strip().strip("\"'").strip()


async def condense_question(
    *, llm: ChatModel, turns: Sequence[tuple[str, str]], question: str
) -> Condensed:
    """`question` made standalone from the earlier `turns` (role, text); unchanged when there
    are no earlier turns, the model is not generative, or its reply is empty or too long."""
    if not turns or not llm.generative:
        return Condensed(question)
    messages = condense_messages(turns, question)
    completion = await llm.complete(messages, max_tokens=CONDENSE_MAX_TOKENS, temperature=0.0)
    prompt_tokens = completion.usage.prompt_tokens or sum(
        count_tokens(m.content, llm) for m in messages
    )
    completion_tokens = completion.usage.completion_tokens or count_tokens(completion.text, llm)
    rewritten = _clean(completion.text)
    if not rewritten or len(rewritten) > MAX_QUESTION_CHARS:
        rewritten = question
    return Condensed(rewritten, prompt_tokens, completion_tokens)
