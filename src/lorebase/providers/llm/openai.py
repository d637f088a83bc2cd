"""`openai`: Chat Completions through the official SDK. `OPENAI_BASE_URL` points it at any
OpenAI-compatible server (Azure-style gateways, LiteLLM, vLLM, LM Studio); OpenRouter reuses
the class with its own base URL and headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import openai

from lorebase.providers.base import (
    AuthFailed,
    BadResponse,
    Completion,
    ConfigurationError,
    Message,
    ProviderError,
    ProviderSettings,
    ProviderUnavailable,
    RateLimited,
    Usage,
    redact,
)
from lorebase.providers.resilience import (
    RetryPolicy,
    call_with_retries,
    is_transport_error,
    parse_retry_after,
    stream_with_retries,
)

DEFAULT_MODEL = "gpt-4o-mini"
# Gateways without keys (vLLM, LM Studio) still get a bearer: the SDK requires one.
NO_KEY = "unused"
# Reasoning models take only the default temperature.
_FIXED_TEMPERATURE_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def openai_client(
    *,
    api_key: str,
    base_url: str | None,
    policy: RetryPolicy,
    default_headers: Mapping[str, str] | None = None,
) -> openai.AsyncOpenAI:
    """An SDK client with our timeouts and no SDK retries (ours honour Retry-After + jitter)."""
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        organization=None,
        project=None,
        timeout=openai.Timeout(policy.read_timeout, connect=policy.connect_timeout),
        max_retries=0,
        default_headers=dict(default_headers or {}),
    )


def map_openai_error(exc: Exception, *, provider: str, secrets: Sequence[str]) -> ProviderError:
    """The ProviderError for an SDK exception; vendor text is redacted, the SDK object dropped."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderUnavailable(f"{provider} timed out", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable(f"{provider} is unreachable", provider=provider)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = _vendor_message(exc.body) or exc.response.reason_phrase
        message = redact(f"{provider} answered {status}: {detail}", secrets)
        retry_after = parse_retry_after(dict(exc.response.headers))
        if status in (401, 403):
            return AuthFailed(
                f"{provider} refused the credentials ({status})", provider=provider, status=status
            )
        if status == 429:
            return RateLimited(message, provider=provider, retry_after=retry_after, status=status)
        if status in (408, 409) or status >= 500:
            return ProviderUnavailable(
                message, provider=provider, retry_after=retry_after, status=status
            )
        return BadResponse(message, provider=provider, status=status)
    if is_transport_error(exc):
        return ProviderUnavailable(f"{provider} connection failed", provider=provider)
    if isinstance(exc, openai.APIResponseValidationError | openai.OpenAIError):
        return BadResponse(f"{provider} sent a response we cannot read", provider=provider)
    return BadResponse(f"{provider} failed: {type(exc).__name__}", provider=provider)


def _vendor_message(body: object) -> str:
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:300]
        if isinstance(body.get("message"), str):
            return str(body["message"])[:300]
    if isinstance(body, str):
        return body[:300]
    return ""


class OpenAIChatModel:
    """A chat model behind the Chat Completions API (OpenAI or any compatible server)."""

    def __init__(
        self,
        *,
        client: openai.AsyncOpenAI,
        model: str,
        policy: RetryPolicy,
        provider: str = "openai",
        secrets: Sequence[str] = (),
        max_tokens_param: str = "max_completion_tokens",
    ) -> None:
        self._client = client
        self._model = model
        self._policy = policy
        self._provider = provider
        self._secrets = tuple(secrets)
        self._max_tokens_param = max_tokens_param

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model_id(self) -> str:
        return self._model

    def _params(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] | None,
        response_format: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            self._max_tokens_param: max_tokens,
        }
        if not self._model.split("/")[-1].startswith(_FIXED_TEMPERATURE_PREFIXES):
            params["temperature"] = temperature
        if stop:
            params["stop"] = list(stop)
        if response_format is not None:
            params["response_format"] = response_format
        return params

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """One chat completion, retried on 429/5xx/timeouts."""
        params = self._params(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=stop,
            response_format=response_format,
        )

        async def once() -> Completion:
            try:
                response = await self._client.chat.completions.create(**params)
            except Exception as exc:
                raise map_openai_error(
                    exc, provider=self._provider, secrets=self._secrets
                ) from None
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

        return await call_with_retries(once, policy=self._policy)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[str]:
        """Text deltas from a streamed chat completion (SSE)."""
        params = self._params(messages, max_tokens=max_tokens, temperature=temperature, stop=stop)
        return stream_with_retries(lambda: self._stream_once(params), policy=self._policy)

    async def _stream_once(self, params: dict[str, Any]) -> AsyncIterator[str]:
        try:
            chunks = await self._client.chat.completions.create(**params, stream=True)
            async for chunk in chunks:
                for choice in chunk.choices:
                    if choice.delta.content:
                        yield choice.delta.content
        except ProviderError:
            raise
        except Exception as exc:
            raise map_openai_error(exc, provider=self._provider, secrets=self._secrets) from None


def _factory(settings: ProviderSettings) -> OpenAIChatModel:
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if not key and not settings.openai_base_url:
        raise ConfigurationError(
            "OPENAI_API_KEY is not set (needed by the openai provider; "
            "or set OPENAI_BASE_URL for a server that takes no key)"
        )
    policy = RetryPolicy.from_settings(settings)
    return OpenAIChatModel(
        client=openai_client(
            api_key=key or NO_KEY, base_url=settings.openai_base_url, policy=policy
        ),
        model=settings.llm_model or DEFAULT_MODEL,
        policy=policy,
        secrets=[key] if key else [],
        # OpenAI deprecated `max_tokens`; compatible servers often only know it.
        max_tokens_param="max_tokens" if settings.openai_base_url else "max_completion_tokens",
    )


def register(registry: Any) -> None:
    registry.register_llm("openai", _factory)
