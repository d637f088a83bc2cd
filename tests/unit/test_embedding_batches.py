"""Batch planning for embedding calls: by count, by token budget, shortest texts together."""

from __future__ import annotations

from lorebase.embedding.service import plan_batches, text_sha256


def words(text: str) -> int:
    return len(text.split())


def test_batches_are_capped_by_count() -> None:
    texts = [f"t{i}" for i in range(10)]
    batches = plan_batches(texts, max_batch=4, max_batch_tokens=10**6, count_tokens=None)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(i for b in batches for i in b) == list(range(10))


def test_batches_are_capped_by_tokens_and_an_oversized_text_goes_alone() -> None:
    texts = ["a " * 3, "b " * 4, "c " * 50, "d " * 2, "e " * 5]
    batches = plan_batches(texts, max_batch=100, max_batch_tokens=10, count_tokens=words)
    assert [[texts[i].split()[0] for i in b] for b in batches] == [["d", "a", "b"], ["e"], ["c"]]
    for batch in batches:
        assert sum(words(texts[i]) for i in batch) <= 10 or len(batch) == 1


def test_texts_are_grouped_by_length_to_pad_little() -> None:
    texts = ["x" * n for n in (50, 1, 40, 2, 30, 3)]
    batches = plan_batches(texts, max_batch=3, max_batch_tokens=10**6, count_tokens=None)
    assert [[len(texts[i]) for i in b] for b in batches] == [[1, 2, 3], [30, 40, 50]]


def test_nothing_to_embed_is_no_batch() -> None:
    assert plan_batches([], max_batch=8, max_batch_tokens=8, count_tokens=words) == []


def test_cache_key_is_the_sha256_of_the_utf8_text() -> None:
    assert text_sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
