"""Chunks fit the embedder, follow the structure and point back into the text."""

from __future__ import annotations

import itertools

import pytest

from lorebase.knowledge.chunking import (
    Chunk,
    ChunkingConfig,
    approximate_tokens,
    chunk_document,
    fit_to_embedder,
)
from lorebase.knowledge.extract import Extracted, extract
from lorebase.providers.local import LocalEmbedder
from tests import samples


@pytest.fixture(scope="module")
def count() -> object:
    return LocalEmbedder().count_tokens


def chunks_of(doc: Extracted, count: object, config: ChunkingConfig | None = None) -> list[Chunk]:
    config = config or fit_to_embedder(256)
    chunks = chunk_document(doc, count_tokens=count, config=config)  # type: ignore[arg-type]
    for index, chunk in enumerate(chunks):
        assert chunk.index == index
        assert doc.text[chunk.start : chunk.end] == chunk.text, "offsets point into the text"
        assert count(chunk.text) <= config.max_tokens  # type: ignore[operator]
    return chunks


def test_budget_is_fitted_to_the_model() -> None:
    small = fit_to_embedder(256)
    assert small.max_tokens == 248
    assert 0 < small.overlap_tokens < small.max_tokens // 4
    assert fit_to_embedder(8191, preferred_tokens=400).max_tokens == 400


def test_sections_carry_their_heading_path(count: object) -> None:
    long_intro = "The handbook explains how the team works and why. " * 8
    doc = extract(
        "markdown",
        text=samples.MARKDOWN.replace("The handbook explains how the team works.", long_intro),
    )
    chunks = chunks_of(doc, count)
    paths = [chunk.section_path for chunk in chunks]
    assert paths[0] == ["Handbook"]
    onboarding = next(c for c in chunks if "laptop" in c.text)
    assert onboarding.section_path == ["Handbook", "Onboarding"]
    assert "def welcome" in onboarding.text, "the code block stays with its section"
    assert onboarding.text.startswith("## Onboarding"), "a chunk starts at its heading"
    holidays = next(c for c in chunks if "twenty-five" in c.text)
    assert holidays.section_path == ["Handbook", "Holidays"]


def test_code_block_that_fits_is_never_split(count: object) -> None:
    body = "\n".join(f"    step_{i} = compute({i})  # explain step {i}" for i in range(18))
    text = (
        "# Guide\n\n" + "Intro sentence here. " * 60 + f"\n\n```python\ndef run():\n{body}\n```\n"
    )
    doc = extract("markdown", text=text)
    chunks = chunks_of(doc, count)
    holding = [c for c in chunks if "def run" in c.text]
    assert len(holding) == 1
    assert holding[0].text.endswith("```")
    assert "step_17" in holding[0].text


def test_long_sections_split_at_sentences_with_overlap(count: object) -> None:
    sentences = [f"Fact number {i} is about topic {i % 7} and matters." for i in range(120)]
    doc = extract("markdown", text="# Facts\n\n" + " ".join(sentences) + "\n")
    chunks = chunks_of(doc, count)
    assert len(chunks) >= 4
    for previous, current in itertools.pairwise(chunks):
        assert current.start < previous.end, "consecutive chunks overlap"
        assert current.text[0].isupper(), "chunks start at a sentence"
        assert current.section_path == ["Facts"]


def test_giant_word_is_cut_by_tokens(count: object) -> None:
    doc = extract("text", text="x" * 5000)
    chunks = chunks_of(doc, count)
    assert "".join(c.text for c in chunks) == "x" * 5000


def test_code_files_split_at_definitions(count: object) -> None:
    functions = "\n\n".join(
        f'def handler_{i}(event):\n    """Handle event kind {i} for the billing service."""\n'
        f"    return process(event, kind={i}, retries=3, timeout=30, verbose=True)\n"
        for i in range(30)
    )
    doc = extract("code", text=samples.PYTHON + "\n\n" + functions, language="python")
    chunks = chunks_of(doc, count)
    assert all(c.kind == "code" for c in chunks)
    for chunk in chunks[1:]:
        assert chunk.text.startswith(("def ", "class ")), chunk.text[:40]
    assert any(c.symbol == "handler_10" or "def handler_10" in c.text for c in chunks)


def test_oversized_class_splits_at_its_methods(count: object) -> None:
    methods = "\n".join(
        f"    public int method{i}(int value) {{\n"
        f"        return value * {i} + OFFSET_{i};\n    }}\n"
        for i in range(40)
    )
    java = f"public class Calculator {{\n{methods}}}\n"
    doc = extract("code", text=java, language="java")
    chunks = chunks_of(doc, count)
    assert len(chunks) > 1
    for chunk in chunks[1:]:
        assert chunk.text.startswith("public int method"), chunk.text[:40]
        assert chunk.section_path == ["Calculator"]


def test_pdf_chunks_know_their_pages(count: object) -> None:
    data = samples.pdf_bytes([(f"Chapter {n}", f"Content of chapter {n}. " * 40) for n in (1, 2)])
    doc = extract("pdf", data=data)
    chunks = chunks_of(doc, count)
    first = next(c for c in chunks if "chapter 1" in c.text)
    second = next(c for c in chunks if "chapter 2" in c.text)
    assert first.page == 1
    assert second.page == 2
    assert second.section_path == ["Chapter 2"]
    assert second.metadata()["page"] == 2


def test_approximate_counter_is_conservative(count: object) -> None:
    text = samples.MARKDOWN * 3
    assert approximate_tokens(text) >= count(text) * 0.9  # type: ignore[operator]
