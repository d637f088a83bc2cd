"""The local MiniLM embedder: order kept when batches are sorted by length, unit vectors,
results independent of how texts were batched, and its own token counter."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lorebase.providers.local import LocalEmbedder

TEXTS = [
    "PostgreSQL stores the vectors in one column, indexed per dimension with HNSW.",
    "short",
    "Agents query projects over REST or MCP.",
    "x",
    "A much longer passage about retries, backoff with jitter, and honouring Retry-After "
    "headers when a vendor rate-limits the embedding calls of an ingestion job.",
]


@pytest.mark.parametrize(
    "small_batches",
    [LocalEmbedder(max_batch=2), LocalEmbedder(batch_tokens=64)],
    ids=["two-texts-a-batch", "token-budget"],
)
async def test_batches_sorted_by_length_keep_the_callers_order(
    small_batches: LocalEmbedder,
) -> None:
    together = await small_batches.embed_batch(TEXTS)
    one_by_one = [(await small_batches.embed_batch([text]))[0] for text in TEXTS]

    for vector, alone in zip(together, one_by_one, strict=True):
        assert len(vector) == 384
        assert abs(np.linalg.norm(vector) - 1.0) < 1e-5
        assert float(np.dot(vector, alone)) > 0.9999
    # Different texts really are different vectors (the order could not be shuffled silently).
    assert float(np.dot(together[0], together[2])) < 0.99


def test_space_and_limits() -> None:
    embedder = LocalEmbedder()
    assert (embedder.provider, embedder.model_id, embedder.dimension) == (
        "local",
        "all-MiniLM-L6-v2",
        384,
    )
    assert embedder.max_input_tokens == 256
    assert embedder.max_batch_tokens == embedder.max_batch * 256
    assert embedder.count_tokens("hello world") == 2


def test_threads_share_the_cores_between_serve_workers() -> None:
    from lorebase.providers.local import local_threads
    from lorebase.settings import Settings

    cores = os.cpu_count() or 1
    one = Settings(_env_file=None, lorebase_workers=1)  # type: ignore[call-arg]
    many = Settings(_env_file=None, lorebase_workers=cores)  # type: ignore[call-arg]
    fixed = Settings(_env_file=None, embedding_threads=3)  # type: ignore[call-arg]
    assert local_threads(one) == max(1, min(4, cores))
    assert local_threads(many) == 1
    assert local_threads(fixed) == 3
