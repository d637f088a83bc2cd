"""`openai`: Chat Completions and embeddings through the official SDK. `OPENAI_BASE_URL`
points both at any OpenAI-compatible server (Azure-style gateways, LiteLLM, vLLM, LM Studio);
OpenRouter (`providers.openrouter`) reuses the chat model with its own base URL and headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from lorebase.providers import http
from lorebase.providers.base import (
    BadResponse,
    ChatBase,
    ChatOptions,
    Completion,
    ConfigurationError,
    Message,
    ProviderSettings,
    Usage,
)
from lorebase.providers.http import JsonClient
from lorebase.providers.registry import Registry
from lorebase.providers.resilience import RetryPolicy
from lorebase.providers.vendor import (
    Connection,
    HttpFailure,
    VendorEmbedder,
    VendorModel,
    secret_of,
    vendor_message,
)

# The SDK is imported on first use (a model built, an error read), not with this module:
# every `lorebase` process registers every vendor, and one not configured for openai
# should not pay for importing its SDK (about 1 CPU s).
if TYPE_CHECKING:
    import openai

PROVIDER = "openai"
OFFICIAL_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_EMBEDDING_MODEL = "text-embedding-3-small"
# Gateways without keys (vLLM, LM Studio) still get a bearer: the SDK requires one.
NO_KEY = "unused"
# Reasoning models take only the default temperature.
_FIXED_TEMPERATURE_PREFIXES = ("o1", "o3", "o4", "gpt-5")
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


def openai_client(
    *,
    api_key: str,
    base_url: str | None,
    policy: RetryPolicy,
    default_headers: Mapping[str, str] | None = None,
) -> openai.AsyncOpenAI:
    """An SDK client with our timeouts and no SDK retries (ours honour Retry-After + jitter)."""
    import openai

    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        organization=None,
        project=None,
        timeout=openai.Timeout(policy.read_timeout, connect=policy.connect_timeout),
        max_retries=0,
        default_headers=dict(default_headers or {}),
    )


def classify(exc: Exception) -> HttpFailure:
    """What an openai SDK exception says about the HTTP exchange."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return HttpFailure("timeout")
    if isinstance(exc, openai.APIConnectionError):
        return HttpFailure("unreachable")
    if isinstance(exc, openai.APIStatusError):
        detail = vendor_message(exc.body) or exc.response.reason_phrase
        return HttpFailure("status", exc.status_code, detail, dict(exc.response.headers))
    if isinstance(exc, openai.OpenAIError):
        return HttpFailure("unreadable")
    return HttpFailure("other")


class OpenAIChatModel(VendorModel["openai.AsyncOpenAI"], ChatBase):
    """A chat model behind the Chat Completions API (OpenAI or any compatible server)."""

    def __init__(
        self,
        connection: Connection[openai.AsyncOpenAI],
        *,
        model: str,
        max_tokens_param: str = "max_completion_tokens",
    ) -> None:
        super().__init__(connection, model=model)
        self._max_tokens_param = max_tokens_param

    def _classify(self, exc: Exception) -> HttpFailure:
        return classify(exc)

    def _params(self, messages: Sequence[Message], options: ChatOptions) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            self._max_tokens_param: options.max_tokens,
        }
        if not self._model.split("/")[-1].startswith(_FIXED_TEMPERATURE_PREFIXES):
            params["temperature"] = options.temperature
        if options.stop:
            params["stop"] = list(options.stop)
        if options.response_format is not None:
            params["response_format"] = options.response_format
        return params

    async def _complete_with(self, messages: Sequence[Message], options: ChatOptions) -> Completion:
        """One chat completion, retried on 429/5xx/timeouts."""
        params = self._params(messages, options)
        response = await self._call(lambda: self._client.chat.completions.create(**params))
        if not response.choices:
            raise BadResponse(f"{self._provider} returned no choices", provider=self._provider)
        usage = response.usage
        return Completion(
            text=response.choices[0].message.content or "",
            model_id=response.model or self._model,
            usage=Usage(
                prompt_tokens=usage.prompt_tokens if usage else 0,
                completion_tokens=usage.completion_tokens if usage else 0,
            ),
        )

    def _stream_with(self, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[str]:
        """Text deltas from a streamed chat completion (SSE)."""
        params = self._params(messages, options)
        return self._stream(lambda: self._deltas(params))

    async def _deltas(self, params: dict[str, Any]) -> AsyncIterator[str]:
        chunks = await self._client.chat.completions.create(**params, stream=True)
        async for chunk in chunks:
            for choice in chunk.choices:
                if choice.delta.content:
                    yield choice.delta.content


class OpenAIEmbedder(VendorEmbedder[JsonClient]):
    """Embeddings from the `/embeddings` endpoint, returned as unit vectors in input order.
    Posted by our thin client (`providers.http`), not the SDK: the same wire protocol at a
    fifth of the CPU per call, and an embeddings call is on every search's path."""

    max_batch = MAX_BATCH
    max_input_tokens = MAX_INPUT_TOKENS
    max_batch_tokens = MAX_BATCH_TOKENS

    def __init__(
        self,
        connection: Connection[JsonClient],
        *,
        model: str,
        dimension: int,
        send_dimensions: bool,
    ) -> None:
        super().__init__(connection, model=model, dimension=dimension)
        self._send_dimensions = send_dimensions

    def _classify(self, exc: Exception) -> HttpFailure:
        return http.classify(exc)

    @property
    def model_id(self) -> str:
        # A shortened space is another space: name it so spaces never collide.
        return f"{self._model}@{self._dimension}" if self._send_dimensions else self._model

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
            # The raw body, read with orjson: a typed response walks every float of every
            # vector (the SDK's took 45% of a semantic search's CPU at 1536-d).
            reply = await self._client.post_json("/embeddings", params)
            return self._checked(self._vectors(reply.body), texts)

        return await self._call(once)

    def _vectors(self, body: bytes) -> list[list[float]]:
        """The response's vectors in input order."""
        try:
            data = orjson.loads(body)["data"]
            ordered = sorted(data, key=lambda item: int(item["index"]))
            vectors = [item["embedding"] for item in ordered]
        except (ValueError, KeyError, TypeError) as exc:
            raise BadResponse(
                f"{self._provider} sent embeddings we cannot read ({type(exc).__name__})",
                provider=self._provider,
            ) from None
        if not all(isinstance(v, list) for v in vectors):
            raise BadResponse(
                f"{self._provider} sent embeddings that are not lists of floats "
                "(a server that ignores encoding_format=float?)",
                provider=self._provider,
            )
        return vectors


def _key(settings: ProviderSettings, needed_by: str) -> str:
    key = secret_of(settings.openai_api_key)
    if not key and not settings.openai_base_url:
        raise ConfigurationError(
            f"OPENAI_API_KEY is not set (needed by {needed_by}; "
            "or set OPENAI_BASE_URL for a server that takes no key)"
        )
    return key


def _connection(settings: ProviderSettings, key: str) -> Connection[openai.AsyncOpenAI]:
    policy = RetryPolicy.from_settings(settings)
    client = openai_client(api_key=key or NO_KEY, base_url=settings.openai_base_url, policy=policy)
    return Connection(client, policy, PROVIDER, [key])


def _chat(settings: ProviderSettings) -> OpenAIChatModel:
    key = _key(settings, "the openai provider")
    return OpenAIChatModel(
        _connection(settings, key),
        model=settings.llm_model or DEFAULT_MODEL,
        # OpenAI deprecated `max_tokens`; compatible servers often only know it.
        max_tokens_param="max_tokens" if settings.openai_base_url else "max_completion_tokens",
    )


def _embedder(settings: ProviderSettings) -> OpenAIEmbedder:
    key = _key(settings, "EMBEDDING_PROVIDER=openai")
    policy = RetryPolicy.from_settings(settings)
    client = http.JsonClient(
        base_url=settings.openai_base_url or OFFICIAL_BASE_URL,
        headers={"Authorization": f"Bearer {key or NO_KEY}"},
        policy=policy,
    )
    model = settings.embedding_model or DEFAULT_EMBEDDING_MODEL
    native = KNOWN_DIMENSIONS.get(model)
    wanted = settings.embedding_dimensions
    dimension = wanted if wanted is not None else native
    if dimension is None:
        raise ConfigurationError(
            f"EMBEDDING_DIMENSIONS is not set (the dimension of embedding model {model!r} "
            "is not known to Lorebase)"
        )
    shorten = native is not None and dimension != native
    if shorten and not model.startswith(_SHORTENABLE):
        raise ConfigurationError(
            f"EMBEDDING_DIMENSIONS={wanted} does not fit {model!r}, whose vectors have {native}"
        )
    return OpenAIEmbedder(
        Connection(client, policy, PROVIDER, [key]),
        model=model,
        dimension=dimension,
        send_dimensions=shorten,
    )


def register(registry: Registry) -> None:
    registry.register_llm(PROVIDER, _chat)
    registry.register_embedder(PROVIDER, _embedder)
