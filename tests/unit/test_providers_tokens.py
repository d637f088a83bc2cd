"""Token accounting: exact tiktoken counts for OpenAI models without any network, an
approximation that errs high elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import tiktoken

from lorebase.providers import tokens
from lorebase.providers.local import LocalEmbedder


@pytest.fixture
def empty_tiktoken_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    tokens._encoding.cache_clear()
    tiktoken.registry.ENCODINGS.clear()
    yield tmp_path
    tokens._encoding.cache_clear()


def test_openai_models_are_counted_exactly_from_the_shipped_files(
    empty_tiktoken_cache: Path,
) -> None:
    # The ids tiktoken's own documentation gives for "hello world".
    assert tokens._encoding("o200k_base").encode("hello world") == [24912, 2375]  # type: ignore[union-attr]
    assert tokens._encoding("cl100k_base").encode("hello world") == [15339, 1917]  # type: ignore[union-attr]
    assert tokens.count_tokens("hello world", "gpt-4o-mini") == 2
    assert tokens.count_tokens("hello world", "openai/gpt-4o") == 2
    assert tokens.count_tokens("hello world", "text-embedding-3-small") == 2
    assert tokens.is_exact("gpt-4.1")
    assert tokens.is_exact("gpt-3.5-turbo")
    # The files landed where tiktoken looks, so it never had to download them.
    assert len(os.listdir(empty_tiktoken_cache)) == 2


def test_a_corrupt_cached_file_is_replaced(empty_tiktoken_cache: Path) -> None:
    tokens._seed_tiktoken_cache("cl100k_base")
    (cached,) = empty_tiktoken_cache.iterdir()
    cached.write_bytes(b"garbage")
    tokens._seed_tiktoken_cache("cl100k_base")
    assert cached.stat().st_size > 1_000_000


def test_other_models_are_approximated_on_the_high_side() -> None:
    text = "Retrieval-augmented generation grounds answers in retrieved passages. " * 20
    exact = tokens.count_tokens(text, "gpt-4")
    for model in ("claude-haiku-4-5", "llama3.2", "anthropic/claude-3.5-haiku", "smollm2"):
        assert not tokens.is_exact(model)
        assert tokens.count_tokens(text, model) >= exact
        assert tokens.count_tokens(text, model) <= exact * 1.25
    assert tokens.count_tokens("", "llama3.2") == 0


def test_embedders_with_a_tokenizer_count_with_it() -> None:
    counter = tokens.token_counter(LocalEmbedder())
    # MiniLM's WordPiece splits this into more pieces than cl100k (3) does.
    assert counter("unbelievably") == 5
    assert tokens.count_tokens("unbelievably", "gpt-4") == 3
    assert tokens.token_counter("gpt-4o")("hello world") == 2


def test_context_windows_by_model_prefix() -> None:
    assert tokens.context_window("gpt-4o-mini") == 128_000
    assert tokens.context_window("openai/gpt-4.1-nano") == 1_047_576
    assert tokens.context_window("claude-haiku-4-5") == 200_000
    assert tokens.context_window("some-unknown-model") == tokens.DEFAULT_CONTEXT_WINDOW
