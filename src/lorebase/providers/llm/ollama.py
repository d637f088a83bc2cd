"""`ollama`: `/api/chat` (NDJSON streaming) through the official `ollama` SDK.

HTTP errors are turned into ProviderErrors by an httpx response hook, before the SDK sees
them, so that `Retry-After` (which the SDK's ResponseError drops) is honoured."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import httpx
import ollama

from lorebase.providers.base import (
    AuthFailed,
    BadResponse,
    Completion,
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
    parse_retry_after,
    stream_with_retries,
)

PROVIDER = "ollama"
DEFAULT_MODEL = "llama3.2"


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:300]
    return response.text[:300]


def status_error(
    status: int, detail: str, headers: dict[str, str], *, secrets: Sequence[str]
) -> ProviderError:
    """The ProviderError for an HTTP error status of Ollama."""
    message = redact(f"{PROVIDER} answered {status}: {detail or 'error'}", secrets)
    retry_after = parse_retry_after(headers)
    if status in (401, 403):
        return AuthFailed(
            f"{PROVIDER} refused the credentials ({status})", provider=PROVIDER, status=status
        )
    if status == 429:
        return RateLimited(message, provider=PROVIDER, retry_after=retry_after, status=status)
    if status in (408, 409) or status >= 500:
        return ProviderUnavailable(
            message, provider=PROVIDER, retry_after=retry_after, status=status
        )
    return BadResponse(message, provider=PROVIDER, status=status)


def _raise_on_error(secrets: Sequence[str]) -> Callable[[httpx.Response], Awaitable[None]]:
    async def hook(response: httpx.Response) -> None:
        if response.status_code >= 400:
            await response.aread()
            raise status_error(
                response.status_code,
                _error_text(response),
                dict(response.headers),
                secrets=secrets,
            )

    return hook


def map_ollama_error(exc: Exception, *, secrets: Sequence[str]) -> ProviderError:
    """The ProviderError for what the SDK or httpx raised."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return ProviderUnavailable(f"{PROVIDER} timed out", provider=PROVIDER)
    if isinstance(exc, ConnectionError | httpx.TransportError):
        return ProviderUnavailable(f"{PROVIDER} is unreachable", provider=PROVIDER)
    if isinstance(exc, ollama.ResponseError):
        if exc.status_code < 0:  # an error line inside a stream
            return ProviderUnavailable(
                redact(f"{PROVIDER} failed: {exc.error}"[:300], secrets), provider=PROVIDER
            )
        return status_error(exc.status_code, str(exc.error), {}, secrets=secrets)
    return BadResponse(f"{PROVIDER} failed: {type(exc).__name__}", provider=PROVIDER)


def ollama_client(settings: ProviderSettings, policy: RetryPolicy) -> tuple[Any, list[str]]:
    """An SDK client with our timeouts and error hook, and the secrets to redact."""
    # The SDK sends OLLAMA_API_KEY (ollama.com) by itself; keep it out of our messages.
    secrets = [key] if (key := os.environ.get("OLLAMA_API_KEY")) else []
    client = ollama.AsyncClient(
        host=settings.ollama_base_url,
        timeout=httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout),
        event_hooks={"response": [_raise_on_error(secrets)]},
    )
    return client, secrets


def _options(*, max_tokens: int, temperature: float, stop: Sequence[str] | None) -> dict[str, Any]:
    options: dict[str, Any] = {"temperature": temperature, "num_predict": max_tokens}
    if stop:
        options["stop"] = list(stop)
    return options


class OllamaChatModel:
    """A model served by Ollama's `/api/chat`."""

    def __init__(
        self, *, client: Any, model: str, policy: RetryPolicy, secrets: Sequence[str] = ()
    ) -> None:
        self._client = client
        self._model = model
        self._policy = policy
        self._secrets = tuple(secrets)

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def model_id(self) -> str:
        return self._model

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        """One `/api/chat` call (stream false), retried on 429/5xx/timeouts."""
        fmt: Any = None
        if response_format is not None:
            schema = response_format.get("json_schema", {}).get("schema")
            fmt = schema if isinstance(schema, dict) else "json"

        async def once() -> Completion:
            try:
                response = await self._client.chat(
                    model=self._model,
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    stream=False,
                    format=fmt,
                    options=_options(max_tokens=max_tokens, temperature=temperature, stop=stop),
                )
            except Exception as exc:
                raise map_ollama_error(exc, secrets=self._secrets) from None
            return Completion(
                text=response.message.content or "",
                model_id=response.model or self._model,
                usage=Usage(
                    prompt_tokens=response.prompt_eval_count or 0,
                    completion_tokens=response.eval_count or 0,
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
        """Text deltas from `/api/chat`'s NDJSON stream."""
        options = _options(max_tokens=max_tokens, temperature=temperature, stop=stop)
        turns = [{"role": m.role, "content": m.content} for m in messages]
        return stream_with_retries(lambda: self._stream_once(turns, options), policy=self._policy)

    async def _stream_once(
        self, turns: list[dict[str, str]], options: dict[str, Any]
    ) -> AsyncIterator[str]:
        try:
            parts = await self._client.chat(
                model=self._model, messages=turns, stream=True, options=options
            )
            async for part in parts:
                if part.message.content:
                    yield part.message.content
        except Exception as exc:
            raise map_ollama_error(exc, secrets=self._secrets) from None


def _factory(settings: ProviderSettings) -> OllamaChatModel:
    policy = RetryPolicy.from_settings(settings)
    client, secrets = ollama_client(settings, policy)
    return OllamaChatModel(
        client=client, model=settings.llm_model or DEFAULT_MODEL, policy=policy, secrets=secrets
    )


def register(registry: Any) -> None:
    registry.register_llm(PROVIDER, _factory)
