"""One local model for every HTTP worker: the parent serves it on a Unix socket, workers
embed through `SharedEmbedder` and get exactly what the model itself returns."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import numpy as np
import pytest

from lorebase.embedding.shared import (
    SOCKET_ENV,
    EmbeddingServer,
    SharedEmbedder,
    share_local_model,
    shared_local_model,
)
from lorebase.providers.base import ProviderUnavailable
from lorebase.providers.local import LocalEmbedder
from lorebase.settings import Settings


@pytest.fixture(scope="module")
def server() -> object:
    with (
        tempfile.TemporaryDirectory() as directory,
        EmbeddingServer(Path(directory) / "e.sock", threads=1) as running,
    ):
        yield running


async def test_vectors_match_the_model_in_process(server: EmbeddingServer) -> None:
    texts = ["the call gives up waiting", "billing export lock", "a" * 3000]
    shared = SharedEmbedder(str(server.path), like=LocalEmbedder())
    got = await shared.embed_batch(texts)
    await shared.aclose()
    want = server.embedder.embed_sync(texts)
    assert np.allclose(np.asarray(got), np.asarray(want), atol=1e-6)
    assert shared.count_tokens("billing export lock") == server.embedder.count_tokens(
        "billing export lock"
    )
    assert (shared.model_id, shared.dimension) == ("all-MiniLM-L6-v2", 384)


async def test_concurrent_callers_each_get_their_own_vectors(server: EmbeddingServer) -> None:
    shared = SharedEmbedder(str(server.path), like=LocalEmbedder())
    texts = [f"question number {i} about timeouts" for i in range(12)]
    results = await asyncio.gather(*(shared.embed_batch([t]) for t in texts))
    await shared.aclose()
    want = server.embedder.embed_sync(texts)
    assert np.allclose(np.asarray([r[0] for r in results]), np.asarray(want), atol=1e-6)


async def test_a_missing_server_is_a_provider_outage(tmp_path: Path) -> None:
    shared = SharedEmbedder(str(tmp_path / "nobody.sock"), like=LocalEmbedder())
    with pytest.raises(ProviderUnavailable):
        await shared.embed_batch(["x"])


def test_workers_share_only_when_the_socket_is_exported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    local = LocalEmbedder()
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    assert share_local_model(local) is local
    monkeypatch.setenv(SOCKET_ENV, str(tmp_path / "e.sock"))
    assert isinstance(share_local_model(local), SharedEmbedder)


def test_one_worker_or_a_remote_embedder_shares_nothing() -> None:
    with shared_local_model(Settings(embedding_provider="local"), workers=1) as path:
        assert path is None
    with shared_local_model(
        Settings(embedding_provider="openai", openai_api_key="k"), workers=2  # type: ignore[arg-type]
    ) as path:
        assert path is None


async def test_a_worker_forked_before_the_model_loads_waits_in_the_backlog() -> None:
    """`serve` forks its workers while the socket only listens, then loads the model: a
    request sent in between is answered once the model serves, not refused."""
    with shared_local_model(Settings(embedding_provider="local"), workers=2) as server:
        assert server is not None
        shared = SharedEmbedder(str(server.path), like=LocalEmbedder())
        pending = asyncio.ensure_future(shared.embed_batch(["asked before the model loaded"]))
        await asyncio.sleep(0.3)
        assert not pending.done()
        await asyncio.to_thread(server.start)
        got = await asyncio.wait_for(pending, timeout=60)
        await shared.aclose()
        want = server.embedder.embed_sync(["asked before the model loaded"])
        assert np.allclose(np.asarray(got), np.asarray(want), atol=1e-6)
    assert not server.path.exists()
