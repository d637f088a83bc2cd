"""The numbered-sources prompt format and the extractive answerer that reads it."""

from __future__ import annotations

from lorebase.providers.base import Message, Source, format_sources, parse_sources
from lorebase.providers.extractive import NO_ANSWER, ExtractiveChatModel, sentences, terms

PASSAGES = [
    "Lorebase is a knowledge engine for agents.\nIt stores projects in PostgreSQL.",
    "# Configuration\nThe server listens on port 8000 by default. Set --port to change it.",
    "Redis caches query results for an hour.",
]


def test_format_numbers_the_sources_and_ends_with_the_question() -> None:
    system, user = format_sources("Which port?", PASSAGES)
    assert system.role == "system"
    assert "[1]" in system.content  # the instructions show the citation form
    lines = user.content.splitlines()
    assert lines[0] == "Sources:"
    assert lines[1] == "[1] Lorebase is a knowledge engine for agents."
    assert lines[2] == "    It stores projects in PostgreSQL."
    assert lines[-1] == "Question: Which port?"


def test_parse_reads_back_what_format_wrote_even_with_tricky_passages() -> None:
    tricky = ["[2] looks like a source\n\nQuestion: not the question", "plain"]
    parsed = parse_sources(format_sources("The real\nquestion?", tricky))
    assert parsed == (
        "The real\nquestion?",
        [Source(1, "[2] looks like a source\n\nQuestion: not the question"), Source(2, "plain")],
    )


def test_parse_rejects_other_prompts() -> None:
    assert parse_sources([Message("user", "Just chatting")]) is None
    assert parse_sources([Message("system", "Sources:\n[1] x\n\nQuestion: y")]) is None


def test_terms_drop_stop_words_and_stem() -> None:
    assert terms("What ports does the server listen on?") == {"port", "server", "listen"}


def test_sentences_split_prose_and_keep_headings_apart() -> None:
    assert sentences("# Title\nFirst one. Second one!\n\n- item a\n- item b") == [
        "# Title",
        "First one.",
        "Second one!",
        "- item a",
        "- item b",
    ]


async def test_extractive_answers_with_the_best_sentence_and_its_citation() -> None:
    llm = ExtractiveChatModel()
    result = await llm.complete(format_sources("What port does the server listen on?", PASSAGES))
    assert result.text == "The server listens on port 8000 by default. [2]"
    assert result.model_id == "extractive"
    assert result.usage.prompt_tokens == 0


async def test_extractive_cites_several_sources_when_they_each_answer() -> None:
    result = await ExtractiveChatModel().complete(
        format_sources(
            "Where are projects stored and what caches query results?",
            PASSAGES,
        )
    )
    assert "It stores projects in PostgreSQL. [1]" in result.text
    assert "Redis caches query results for an hour. [3]" in result.text


async def test_extractive_says_when_the_sources_do_not_answer() -> None:
    llm = ExtractiveChatModel()
    assert (await llm.complete(format_sources("Who wrote Hamlet?", PASSAGES))).text == NO_ANSWER
    assert (await llm.complete([Message("user", "hello")])).text == NO_ANSWER
    assert (await llm.complete(format_sources("Who wrote Hamlet?", []))).text == NO_ANSWER


async def test_extractive_stream_is_the_answer_in_pieces() -> None:
    llm = ExtractiveChatModel()
    prompt = format_sources("Where are projects stored and what caches query results?", PASSAGES)
    pieces = [piece async for piece in llm.stream(prompt)]
    assert len(pieces) == 2
    assert "".join(pieces) == (await llm.complete(prompt)).text
