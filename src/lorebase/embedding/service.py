"""Embed texts for storage or search through the configured embedder."""

from __future__ import annotations

from collections.abc import Sequence

from lorebase.providers.base import Embedder


async def embed_texts(embedder: Embedder, texts: Sequence[str]) -> list[list[float]]:
    """Embed `texts` in batches of the embedder's `max_batch`, keeping their order."""
    vectors: list[list[float]] = []
    for start in range(0, len(texts), embedder.max_batch):
        vectors.extend(await embedder.embed_batch(texts[start : start + embedder.max_batch]))
    return vectors
