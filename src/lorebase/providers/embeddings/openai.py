"""`openai` embeddings (`text-embedding-3-small` by default) through the official SDK; with
`OPENAI_BASE_URL` any OpenAI-compatible embeddings endpoint."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import openai

from lorebase.providers.base import (
    BadResponse,
    ConfigurationError,
    ProviderSettings,
    unit_vectors,
)
from lorebase.providers.llm.openai import NO_KEY, map_openai_error, openai_client
from lorebase.providers.resilience import RetryPolicy, call_with_retries

DEFAULT_MODEL = "text-embedding-3-small"
# Native dimensions; `text-embedding-3-*` can also return shortened vectors (`dimensions`).
KNOWN_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_SHORTENABLE = ("text-embedding-3-",)
# OpenAI's documented limits: 2048 inputs and 300k tokens per request, 8191 tokens per input.
MAX_BATCH = 2048
MAX_BATCH_TOKENS = 300_000
MAX_INPUT_TOKENS = 8191


class OpenAIEmbedder:
    """Embeddings from the `/embeddings` endpoint, returned as unit vectors in input order."""

    def __init__(
        self,
        *,
        client: openai.AsyncOpenAI,
        model: str,
        dimension: int,
        policy: RetryPolicy,
        send_dimensions: bool,
        provider: str = "openai",
        secrets: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._model = model
        self._dimension = dimension
        self._policy = policy
        self._send_dimensions = send_dimensions
        self._provider = provider
        self._secrets = tuple(secrets)

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model_id(self) -> str:
        # A shortened space is another space: name it so spaces never collide.
        return f"{self._model}@{self._dimension}" if self._send_dimensions else self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_batch(self) -> int:
        return MAX_BATCH

    @property
    def max_input_tokens(self) -> int:
        return MAX_INPUT_TOKENS

    @property
    def max_batch_tokens(self) -> int:
        return MAX_BATCH_TOKENS

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """One `/embeddings` call (retried), checked for count, order and dimension."""
        if not texts:
            return []
        params: dict[str, Any] = {
            "model": self._model,
            "input": list(texts),
            "encoding_format": "float",
        }
        if self._send_dimensions:
            params["dimensions"] = self._dimension

        async def once() -> list[list[float]]:
            try:
                response = await self._client.embeddings.create(**params)
            except Exception as exc:
                raise map_openai_error(
                    exc, provider=self._provider, secrets=self._secrets
                ) from None
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(texts):
                raise BadResponse(
                    f"{self._provider} returned {len(data)} vectors for {len(texts)} texts",
                    provider=self._provider,
                )
            vectors = [list(item.embedding) for item in data]
            if any(len(v) != self._dimension for v in vectors):
                raise BadResponse(
                    f"{self._provider} returned vectors of another dimension than "
                    f"{self._dimension} for {self._model}",
                    provider=self._provider,
                )
            return unit_vectors(vectors, provider=self._provider)

        return await call_with_retries(once, policy=self._policy)


def _factory(settings: ProviderSettings) -> OpenAIEmbedder:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if not key and not settings.openai_base_url:
        raise ConfigurationError(
            "OPENAI_API_KEY is not set (needed by EMBEDDING_PROVIDER=openai; "
            "or set OPENAI_BASE_URL for a server that takes no key)"
        )
    model = settings.embedding_model or DEFAULT_MODEL
    native = KNOWN_DIMENSIONS.get(model)
    wanted = settings.embedding_dimensions
    if native is None and wanted is None:
        raise ConfigurationError(
            f"EMBEDDING_DIMENSIONS is not set (the dimension of embedding model {model!r} "
            "is not known to Lorebase)"
        )
    shorten = wanted is not None and native is not None and wanted != native
    if shorten and not model.startswith(_SHORTENABLE):
        raise ConfigurationError(
            f"EMBEDDING_DIMENSIONS={wanted} does not fit {model!r}, whose vectors have {native}"
        )
    policy = RetryPolicy.from_settings(settings)
    dimension = wanted if wanted is not None else native
    assert dimension is not None
    return OpenAIEmbedder(
        client=openai_client(
            api_key=key or NO_KEY, base_url=settings.openai_base_url, policy=policy
        ),
        model=model,
        dimension=dimension,
        policy=policy,
        send_dimensions=shorten,
        secrets=[key] if key else [],
    )


def register(registry: Any) -> None:
    registry.register_embedder("openai", _factory)
