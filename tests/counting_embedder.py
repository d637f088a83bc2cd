"""An embedder registered through the provider registry that records every text it is sent,
wrapping the session's real one: "no embedding calls for this page" is then observable."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from lorebase.context import AppContext
from lorebase.providers.base import Embedder
from lorebase.providers.registry import build_embedder, load_registry

PROVIDER = "counting"


class CountingEmbedder:
    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.texts: list[str] = []

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def max_batch(self) -> int:
        return self.inner.max_batch

    @property
    def max_input_tokens(self) -> int:
        return self.inner.max_input_tokens

    @property
    def max_batch_tokens(self) -> int:
        return self.inner.max_batch_tokens

    def warm_up(self) -> None:
        self.inner.warm_up()

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts.extend(texts)
        return await self.inner.embed_batch(texts)

    def __getattr__(self, name: str) -> Any:  # tokenizer and friends, as the inner one has them
        return getattr(self.inner, name)


def counting_context(ctx: AppContext, **settings: Any) -> tuple[AppContext, CountingEmbedder]:
    """`ctx` with `EMBEDDING_PROVIDER=counting` (a registry entry wrapping its embedder)."""
    registry = load_registry(plugins=False)
    registry.register_embedder(PROVIDER, lambda _settings: CountingEmbedder(ctx.embedder))
    new_settings = ctx.settings.model_copy(update={"embedding_provider": PROVIDER, **settings})
    embedder = build_embedder(new_settings, registry)
    assert isinstance(embedder, CountingEmbedder)
    counted = dataclasses.replace(ctx, settings=new_settings, registry=registry, embedder=embedder)
    return counted, embedder


async def forget_cached_embeddings(ctx: AppContext) -> None:
    """Empty the embedding cache of the counting provider: any text embedded again reaches it."""
    async with ctx.db.connection() as conn:
        await conn.execute("DELETE FROM embedding_cache WHERE provider = %s", (PROVIDER,))
