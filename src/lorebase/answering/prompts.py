"""Prompts of the answering layer. Answers use the providers' numbered-sources format
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

RERANK_INSTRUCTIONS = (
    "Rank the numbered sources by how well they answer the question, most relevant first. "
    "Reply with the source numbers only, in square brackets, separated by '>', for example: "
    "[2] > [3] > [1]. Include every source exactly once and write nothing else."
)

CONTEXT_INSTRUCTIONS = (
    "You situate chunks of a document for search. For each numbered chunk, write one short "
    "sentence (at most 40 words) saying what the document is and where this chunk fits in it, "
    "to be prepended to the chunk before it is embedded. Reply with one line per chunk, "
    "starting with its number in square brackets, for example: [1] From the X guide, the "
    "section on Y. Write nothing else."
)


def answer_messages(question: str, passages: Sequence[str]) -> list[Message]:
    """The synthesis prompt: numbered sources, then the question."""
    return format_sources(question, passages, instructions=ANSWER_INSTRUCTIONS)


def rerank_messages(question: str, passages: Sequence[str]) -> list[Message]:
    """The listwise re-ranking prompt over the same numbered-sources layout."""
    return format_sources(question, passages, instructions=RERANK_INSTRUCTIONS)


def context_messages(document_excerpt: str, chunks: Sequence[str]) -> list[Message]:
    """The contextual-embedding prompt: the document (excerpt), then numbered chunks."""
    lines = ["Document:", document_excerpt.strip(), "", "Chunks:"]
    for number, chunk in enumerate(chunks, start=1):
        lines.append(f"[{number}] " + " ".join(chunk.split()))
    return [Message("system", CONTEXT_INSTRUCTIONS), Message("user", "\n".join(lines))]
