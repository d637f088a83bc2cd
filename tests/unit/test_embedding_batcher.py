"""Concurrent search queries share embedder calls: fewer calls, the same vectors, and a
provider error reaches every caller of its batch."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from lorebase.embedding.service import EmbeddingBatcher
from lorebase.providers.base import ProviderUnavailable
from lorebase.providers.local import LocalEmbedder

QUERIES = [f"how do I configure retry number {i} for the crawler?" for i in range(12)]


class _Counting(LocalEmbedder):
    """The local model, counting the calls it gets."""

    calls = 0

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return await super().embed_batch(texts)


class _Down:
    """An embedding provider whose every call fails as an outage would."""

    provider = "down"
    model_id = "down-1"
    dimension = 4
    max_batch = 8
    max_input_tokens = 64
    max_batch_tokens = 512

    def __init__(self) -> None:
        self.calls = 0

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        await asyncio.sleep(0.01)
        raise ProviderUnavailable("connection refused", provider="down")


async def _start_one(
    batcher: EmbeddingBatcher, embedder: _Counting, text: str
) -> asyncio.Task[list[float]]:
    """A query whose embedder call is under way when this returns."""
    task = asyncio.create_task(batcher.embed(text))
    while embedder.calls == 0:
        await asyncio.sleep(0)
    return task


async def test_concurrent_queries_are_embedded_together_with_the_same_vectors() -> None:
    embedder = _Counting()
    embedder.warm_up()
    batcher = EmbeddingBatcher(embedder, max_batch=16)
    together = await asyncio.gather(*(batcher.embed(q) for q in QUERIES))
    assert embedder.calls == 1
    alone = [(await embedder.embed_batch([q]))[0] for q in QUERIES]
    for shared, single in zip(together, alone, strict=True):
        assert float(np.dot(shared, single)) > 0.9999


async def test_queries_arriving_while_the_embedder_is_busy_wait_and_share_a_call() -> None:
    embedder = _Counting()
    embedder.warm_up()
    batcher = EmbeddingBatcher(embedder, max_batch=4)
    first = await _start_one(batcher, embedder, "a single question")
    rest = await asyncio.gather(*(batcher.embed(q) for q in QUERIES[:11]))
    await first
    # The first went out alone at once; the 11 that arrived meanwhile, in batches of <= 4.
    assert embedder.calls == 1 + 3
    assert len(rest) == 11


async def test_a_provider_outage_reaches_every_caller_of_the_batch() -> None:
    down = _Down()
    batcher = EmbeddingBatcher(down)
    results = await asyncio.gather(*(batcher.embed(q) for q in QUERIES[:5]), return_exceptions=True)
    assert all(isinstance(r, ProviderUnavailable) for r in results)
    assert down.calls == 1
    # The batcher recovers: the next query makes a new call.
    with pytest.raises(ProviderUnavailable):
        await batcher.embed("again")
    assert down.calls == 2
