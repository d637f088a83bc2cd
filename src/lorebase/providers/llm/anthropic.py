"""`anthropic`: the Messages API through the official SDK. System messages become the
top-level `system` parameter; the rest alternate user/assistant, as Anthropic requires.
The Messages API of the SDK in use has no `temperature`: the argument is accepted and unused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anthropic

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

PROVIDER = "anthropic"
DEFAULT_MODEL = "claude-haiku-4-5"


def map_anthropic_error(exc: Exception, *, secrets: Sequence[str]) -> ProviderError:
    """The ProviderError for an SDK exception; vendor text is redacted, the SDK object dropped."""
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderUnavailable(f"{PROVIDER} timed out", provider=PROVIDER)
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderUnavailable(f"{PROVIDER} is unreachable", provider=PROVIDER)
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        detail = ""
        body = exc.body
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            detail = str(body["error"].get("message", ""))[:300]
        message = redact(f"{PROVIDER} answered {status}: {detail or 'error'}", secrets)
        retry_after = parse_retry_after(dict(exc.response.headers))
        if status in (401, 403):
            return AuthFailed(
                f"{PROVIDER} refused the credentials ({status})", provider=PROVIDER, status=status
            )
        if status == 429:
            return RateLimited(message, provider=PROVIDER, retry_after=retry_after, status=status)
        if status in (408, 409) or status >= 500:  # 529 is "overloaded"
            return ProviderUnavailable(
                message, provider=PROVIDER, retry_after=retry_after, status=status
            )
        return BadResponse(message, provider=PROVIDER, status=status)
    if is_transport_error(exc):
        return ProviderUnavailable(f"{PROVIDER} connection failed", provider=PROVIDER)
    return BadResponse(f"{PROVIDER} failed: {type(exc).__name__}", provider=PROVIDER)


def split_system(messages: Sequence[Message]) -> tuple[str, list[dict[str, str]]]:
    """System text apart; consecutive same-role turns merged; starts with a user turn."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.role == "system":
            continue
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": message.role, "content": message.content})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": "(continue)"})
    return system, turns


class AnthropicChatModel:
    """Claude through the Messages API."""

    def __init__(
        self,
        *,
        client: anthropic.AsyncAnthropic,
        model: str,
        policy: RetryPolicy,
        secrets: Sequence[str] = (),
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

    def _params(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] | None,
    ) -> dict[str, Any]:
        system, turns = split_system(messages)
        params: dict[str, Any] = {
            "model": self._model,
            "max_tokens": max_tokens,
            "messages": turns,
        }
        # The current Messages API (and SDK) takes no `temperature`: models sample by default.
        if system:
            params["system"] = system
        if stop:
            params["stop_sequences"] = list(stop)
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
        """One Messages API call, retried on 429/5xx/529/timeouts.

        Anthropic has no JSON mode: `response_format` is ignored; ask for JSON in the prompt."""
        params = self._params(messages, max_tokens=max_tokens, temperature=temperature, stop=stop)

        async def once() -> Completion:
            try:
                response = await self._client.messages.create(**params)
            except Exception as exc:
                raise map_anthropic_error(exc, secrets=self._secrets) from None
            text = "".join(
                block.text for block in response.content if getattr(block, "type", "") == "text"
            )
            return Completion(
                text=text,
                model_id=response.model or self._model,
                usage=Usage(
                    prompt_tokens=response.usage.input_tokens,
                    completion_tokens=response.usage.output_tokens,
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
        """Text deltas from the Messages API's SSE stream."""
        params = self._params(messages, max_tokens=max_tokens, temperature=temperature, stop=stop)
        return stream_with_retries(lambda: self._stream_once(params), policy=self._policy)

    async def _stream_once(self, params: dict[str, Any]) -> AsyncIterator[str]:
        try:
            events = await self._client.messages.create(**params, stream=True)
            async for event in events:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    yield event.delta.text
        except ProviderError:
            raise
        except Exception as exc:
            raise map_anthropic_error(exc, secrets=self._secrets) from None


def _factory(settings: ProviderSettings) -> AnthropicChatModel:
    key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else ""
    if not key:
        raise ConfigurationError("ANTHROPIC_API_KEY is not set (needed by the anthropic provider)")
    policy = RetryPolicy.from_settings(settings)
    client = anthropic.AsyncAnthropic(
        api_key=key,
        base_url=settings.anthropic_base_url,
        timeout=anthropic.Timeout(policy.read_timeout, connect=policy.connect_timeout),
        max_retries=0,
    )
    return AnthropicChatModel(
        client=client, model=settings.llm_model or DEFAULT_MODEL, policy=policy, secrets=[key]
    )


def register(registry: Any) -> None:
    registry.register_llm(PROVIDER, _factory)
