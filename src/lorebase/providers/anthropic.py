"""`anthropic`: the Messages API through the official SDK. System messages become the
top-level `system` parameter; the rest alternate user/assistant, as Anthropic requires.
The Messages API of the SDK in use has no `temperature`: the argument is accepted and unused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from lorebase.providers.base import (
    ChatBase,
    ChatOptions,
    Completion,
    Message,
    ProviderSettings,
    Usage,
)
from lorebase.providers.registry import Registry
from lorebase.providers.resilience import RetryPolicy
from lorebase.providers.vendor import (
    Connection,
    HttpFailure,
    VendorModel,
    require_key,
    vendor_message,
)

# The SDK is imported on first use (a model built, an error read), not with this module:
# every `lorebase` process registers every vendor, and one not configured for anthropic
# should not pay for importing its SDK (about 2 CPU s).
if TYPE_CHECKING:
    import anthropic  # noqa: F401 - named in the string annotation of a base class

PROVIDER = "anthropic"
DEFAULT_MODEL = "claude-haiku-4-5"


def classify(exc: Exception) -> HttpFailure:
    """What an anthropic SDK exception says about the HTTP exchange (529 is "overloaded")."""
    import anthropic

    if isinstance(exc, anthropic.APITimeoutError):
        return HttpFailure("timeout")
    if isinstance(exc, anthropic.APIConnectionError):
        return HttpFailure("unreachable")
    if isinstance(exc, anthropic.APIStatusError):
        detail = vendor_message(exc.body)
        return HttpFailure("status", exc.status_code, detail, dict(exc.response.headers))
    return HttpFailure("other")


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


class AnthropicChatModel(VendorModel["anthropic.AsyncAnthropic"], ChatBase):
    """Claude through the Messages API."""

    def _classify(self, exc: Exception) -> HttpFailure:
        return classify(exc)

    def _params(self, messages: Sequence[Message], options: ChatOptions) -> dict[str, Any]:
        system, turns = split_system(messages)
        params: dict[str, Any] = {
            "model": self._model,
            "max_tokens": options.max_tokens,
            "messages": turns,
        }
        # The current Messages API (and SDK) takes no `temperature`: models sample by default.
        if system:
            params["system"] = system
        if options.stop:
            params["stop_sequences"] = list(options.stop)
        return params

    async def _complete_with(self, messages: Sequence[Message], options: ChatOptions) -> Completion:
        """One Messages API call, retried on 429/5xx/529/timeouts.

        Anthropic has no JSON mode: `response_format` is ignored; ask for JSON in the prompt."""
        params = self._params(messages, options)
        response = await self._call(lambda: self._client.messages.create(**params))
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

    def _stream_with(self, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[str]:
        """Text deltas from the Messages API's SSE stream."""
        params = self._params(messages, options)
        return self._stream(lambda: self._deltas(params))

    async def _deltas(self, params: dict[str, Any]) -> AsyncIterator[str]:
        events = await self._client.messages.create(**params, stream=True)
        async for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                yield event.delta.text


def _chat(settings: ProviderSettings) -> AnthropicChatModel:
    import anthropic

    key = require_key(
        settings.anthropic_api_key,
        "ANTHROPIC_API_KEY is not set (needed by the anthropic provider)",
    )
    policy = RetryPolicy.from_settings(settings)
    client = anthropic.AsyncAnthropic(
        api_key=key,
        base_url=settings.anthropic_base_url,
        timeout=anthropic.Timeout(policy.read_timeout, connect=policy.connect_timeout),
        max_retries=0,
    )
    return AnthropicChatModel(
        Connection(client, policy, PROVIDER, [key]), model=settings.llm_model or DEFAULT_MODEL
    )


def register(registry: Registry) -> None:
    registry.register_llm(PROVIDER, _chat)
