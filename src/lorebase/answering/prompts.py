"""The answer prompt. Answers use the providers' numbered-sources format
(`providers.base.format_sources`), so the extractive answerer reads them like an LLM would."""

from __future__ import annotations

from collections.abc import Sequence

from lorebase.providers.base import SOURCES_INSTRUCTIONS, Message, format_sources

NO_ANSWER = "The passages do not contain the answer."

ANSWER_INSTRUCTIONS = (
    SOURCES_INSTRUCTIONS
    + " Where you can, copy the supporting words of a source exactly, in double quotes, "
    'before its marker, like: "a def statement defines a function" [1]. '
    f'If the sources do not contain the answer, reply exactly: "{NO_ANSWER}"'
)


def answer_messages(question: str, passages: Sequence[str]) -> list[Message]:
    """The synthesis prompt: numbered sources, then the question."""
    return format_sources(question, passages, instructions=ANSWER_INSTRUCTIONS)
