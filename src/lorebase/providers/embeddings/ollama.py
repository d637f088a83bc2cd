"""`ollama` embeddings through `/api/embed` (batched input) with the official SDK."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lorebase.providers.base import (
    BadResponse,
    ConfigurationError,
    ProviderSettings,
    unit_vectors,
)
from lorebase.providers.llm.ollama import PROVIDER, map_ollama_error, ollama_client
from lorebase.providers.resilience import RetryPolicy, call_with_retries

DEFAULT_MODEL = "nomic-embed-text"
# (dimension, max input tokens) of common Ollama embedding models, by name without the tag.
KNOWN_MODELS = {
    "nomic-embed-text": (768, 2048),
    "mxbai-embed-large": (1024, 512),
    "all-minilm": (384, 256),
    "snowflake-arctic-embed": (1024, 512),
    "snowflake-arctic-embed2": (1024, 8192),
    "bge-m3": (1024, 8192),
    "bge-large": (1024, 512),
    "embeddinggemma": (768, 2048),
    "granite-embedding": (384, 512),
    "qwen3-embedding": (4096, 8192),
}
DEFAULT_MAX_INPUT_TOKENS = 512
MAX_BATCH = 64


class OllamaEmbedder:
    """Unit vectors from Ollama's `/api/embed`."""

    def __init__(
        self,
        *,
        client: Any,
        model: str,
        dimension: int,
        max_input_tokens: int,
        policy: RetryPolicy,
        secrets: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._model = model
        self._dimension = dimension
        self._max_input_tokens = max_input_tokens
        self._policy = policy
        self._secrets = tuple(secrets)

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def model_id(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_batch(self) -> int:
        return MAX_BATCH

    @property
    def max_input_tokens(self) -> int:
        return self._max_input_tokens

    @property
    def max_batch_tokens(self) -> int:
        return MAX_BATCH * self._max_input_tokens

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """One `/api/embed` call (retried), checked for count and dimension."""
        if not texts:
            return []

        async def once() -> list[list[float]]:
            try:
                response = await self._client.embed(model=self._model, input=list(texts))
            except Exception as exc:
                raise map_ollama_error(exc, secrets=self._secrets) from None
            vectors = [list(v) for v in response.embeddings]
            if len(vectors) != len(texts):
                raise BadResponse(
                    f"{PROVIDER} returned {len(vectors)} vectors for {len(texts)} texts",
                    provider=PROVIDER,
                )
            if any(len(v) != self._dimension for v in vectors):
                raise BadResponse(
                    f"{PROVIDER} returned vectors of another dimension than {self._dimension} "
                    f"for {self._model} (set EMBEDDING_DIMENSIONS)",
                    provider=PROVIDER,
                )
            return unit_vectors(vectors, provider=PROVIDER)

        return await call_with_retries(once, policy=self._policy)


def _factory(settings: ProviderSettings) -> OllamaEmbedder:
    model = settings.embedding_model or DEFAULT_MODEL
    known = KNOWN_MODELS.get(model.split(":", 1)[0])
    dimension = settings.embedding_dimensions or (known[0] if known else None)
    if dimension is None:
        raise ConfigurationError(
            f"EMBEDDING_DIMENSIONS is not set (the dimension of embedding model {model!r} "
            "is not known to Lorebase)"
        )
    policy = RetryPolicy.from_settings(settings)
    client, secrets = ollama_client(settings, policy)
    return OllamaEmbedder(
        client=client,
        model=model,
        dimension=dimension,
        max_input_tokens=known[1] if known else DEFAULT_MAX_INPUT_TOKENS,
        policy=policy,
        secrets=secrets,
    )


def register(registry: Any) -> None:
    registry.register_embedder(PROVIDER, _factory)
