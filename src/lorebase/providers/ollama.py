"""`ollama`: `/api/chat` (NDJSON streaming) and `/api/embed` through the official `ollama` SDK.

HTTP errors are turned into ProviderErrors by an httpx response hook, before the SDK sees
them, so that `Retry-After` (which the SDK's ResponseError drops) is honoured."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import httpx

from lorebase.providers.base import (
    ChatBase,
    ChatOptions,
    Completion,
    ConfigurationError,
    Message,
    ProviderError,
    ProviderSettings,
    ProviderUnavailable,
    Usage,
    redact,
)
from lorebase.providers.registry import Registry
from lorebase.providers.resilience import RetryPolicy
from lorebase.providers.vendor import (
    Connection,
    HttpFailure,
    VendorEmbedder,
    VendorModel,
    status_error,
    vendor_message,
)

# The SDK is imported on first use (a client built, an error read), not with this module:
# every `lorebase` process registers every vendor, and one not configured for ollama
# should not pay for importing its SDK (about 0.3 CPU s).

PROVIDER = "ollama"
DEFAULT_MODEL = "llama3.2"
DEFAULT_EMBEDDING_MODEL = "nomic-embed-text"
# (dimension, max input tokens) of common Ollama embedding models, by name without the tag.
KNOWN_EMBEDDING_MODELS = {
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
MAX_EMBED_BATCH = 64


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    return vendor_message(body) or response.text[:300]


def _raise_on_error(secrets: Sequence[str]) -> Callable[[httpx.Response], Awaitable[None]]:
    async def hook(response: httpx.Response) -> None:
        if response.status_code >= 400:
            await response.aread()
            raise status_error(
                PROVIDER,
                response.status_code,
                _error_text(response),
                dict(response.headers),
                secrets=secrets,
            )

    return hook


def classify(exc: Exception) -> HttpFailure:
    """What the ollama SDK (or httpx under it) raised; HTTP statuses were already turned into
    ProviderErrors by the response hook."""
    import ollama

    if isinstance(exc, httpx.TimeoutException):
        return HttpFailure("timeout")
    if isinstance(exc, ConnectionError | httpx.TransportError):
        return HttpFailure("unreachable")
    if isinstance(exc, ollama.ResponseError):
        return HttpFailure("status", exc.status_code, str(exc.error))
    return HttpFailure("other")


def ollama_connection(settings: ProviderSettings) -> Connection[Any]:
    """An SDK client with our timeouts and error hook, our retry policy, and the secrets to
    redact."""
    import ollama

    policy = RetryPolicy.from_settings(settings)
    # The SDK sends OLLAMA_API_KEY (ollama.com) by itself; keep it out of our messages.
    secrets = [key] if (key := os.environ.get("OLLAMA_API_KEY")) else []
    client = ollama.AsyncClient(
        host=settings.ollama_base_url,
        timeout=httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout),
        event_hooks={"response": [_raise_on_error(secrets)]},
    )
    return Connection(client, policy, PROVIDER, secrets)


class _OllamaModel(VendorModel[Any]):
    def _map(self, exc: Exception) -> ProviderError:
        import ollama

        if isinstance(exc, ollama.ResponseError) and exc.status_code < 0:
            # An error line inside a stream: the model died mid-answer.
            message = redact(f"{PROVIDER} failed: {exc.error}"[:300], self._secrets)
            return ProviderUnavailable(message, provider=PROVIDER)
        return super()._map(exc)

    def _classify(self, exc: Exception) -> HttpFailure:
        return classify(exc)


def _options(options: ChatOptions) -> dict[str, Any]:
    sampling: dict[str, Any] = {
        "temperature": options.temperature,
        "num_predict": options.max_tokens,
    }
    if options.stop:
        sampling["stop"] = list(options.stop)
    return sampling


class OllamaChatModel(_OllamaModel, ChatBase):
    """A model served by Ollama's `/api/chat`."""

    async def _complete_with(self, messages: Sequence[Message], options: ChatOptions) -> Completion:
        """One `/api/chat` call (stream false), retried on 429/5xx/timeouts."""
        fmt: Any = None
        if options.response_format is not None:
            schema = options.response_format.get("json_schema", {}).get("schema")
            fmt = schema if isinstance(schema, dict) else "json"

        response = await self._call(
            lambda: self._client.chat(
                model=self._model,
                messages=[{"role": m.role, "content": m.content} for m in messages],
                stream=False,
                format=fmt,
                options=_options(options),
            )
        )
        return Completion(
            text=response.message.content or "",
            model_id=response.model or self._model,
            usage=Usage(
                prompt_tokens=response.prompt_eval_count or 0,
                completion_tokens=response.eval_count or 0,
            ),
        )

    def _stream_with(self, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[str]:
        """Text deltas from `/api/chat`'s NDJSON stream."""
        sampling = _options(options)
        turns = [{"role": m.role, "content": m.content} for m in messages]
        return self._stream(lambda: self._deltas(turns, sampling))

    async def _deltas(
        self, turns: list[dict[str, str]], options: dict[str, Any]
    ) -> AsyncIterator[str]:
        parts = await self._client.chat(
            model=self._model, messages=turns, stream=True, options=options
        )
        async for part in parts:
            if part.message.content:
                yield part.message.content


class OllamaEmbedder(VendorEmbedder[Any], _OllamaModel):
    """Unit vectors from Ollama's `/api/embed` (batched input)."""

    max_batch = MAX_EMBED_BATCH

    def __init__(
        self, connection: Connection[Any], *, model: str, dimension: int, max_input_tokens: int
    ) -> None:
        super().__init__(connection, model=model, dimension=dimension)
        self.max_input_tokens = max_input_tokens
        self.max_batch_tokens = MAX_EMBED_BATCH * max_input_tokens

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """One `/api/embed` call (retried), checked for count and dimension."""
        if not texts:
            return []

        async def once() -> list[list[float]]:
            response = await self._client.embed(model=self._model, input=list(texts))
            return self._checked([list(v) for v in response.embeddings], texts)

        return await self._call(once)


def _chat(settings: ProviderSettings) -> OllamaChatModel:
    return OllamaChatModel(ollama_connection(settings), model=settings.llm_model or DEFAULT_MODEL)


def _embedder(settings: ProviderSettings) -> OllamaEmbedder:
    model = settings.embedding_model or DEFAULT_EMBEDDING_MODEL
    known = KNOWN_EMBEDDING_MODELS.get(model.split(":", 1)[0])
    dimension = settings.embedding_dimensions or (known[0] if known else None)
    if dimension is None:
        raise ConfigurationError(
            f"EMBEDDING_DIMENSIONS is not set (the dimension of embedding model {model!r} "
            "is not known to Lorebase)"
        )
    return OllamaEmbedder(
        ollama_connection(settings),
        model=model,
        dimension=dimension,
        max_input_tokens=known[1] if known else DEFAULT_MAX_INPUT_TOKENS,
    )


def register(registry: Registry) -> None:
    registry.register_llm(PROVIDER, _chat)
    registry.register_embedder(PROVIDER, _embedder)
