"""`LLM_FALLBACKS`: try the next provider when one is unavailable, and say so."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from lorebase.providers.base import (
    ChatBase,
    ChatModel,
    ChatOptions,
    Completion,
    Message,
    ProviderUnavailable,
    report_warning,
)


def _warning(failed: str, error: ProviderUnavailable, used: str) -> str:
    return f"LLM provider {failed!r} unavailable ({error}); answered with {used!r}"


class FallbackChatModel(ChatBase):
    """A chain of (name, model): each provider after its own retries, the next one when it is
    unavailable (timeouts, 429, 5xx, refused connections). Other errors (a refused key, a bad
    request) are not hidden. A fallback that answered adds a warning to the Completion and to
    `collect_warnings()`; a stream falls back only before its first delta."""

    def __init__(self, chain: Sequence[tuple[str, ChatModel]]) -> None:
        if not chain:
            raise ValueError("a fallback chain needs at least one model")
        self._chain = list(chain)

    @property
    def provider(self) -> str:
        return self._chain[0][0]

    @property
    def model_id(self) -> str:
        return self._chain[0][1].model_id

    @property
    def generative(self) -> bool:
        return self._chain[0][1].generative

    def warm_up(self) -> None:
        """Warm every model of the chain: a fallback must answer at once too."""
        for _, model in self._chain:
            model.warm_up()

    @property
    def chain(self) -> list[str]:
        return [name for name, _ in self._chain]

    async def _complete_with(self, messages: Sequence[Message], options: ChatOptions) -> Completion:
        """The first available provider's completion."""
        warnings: list[str] = []
        last: ProviderUnavailable | None = None
        failed = ""
        for name, model in self._chain:
            if last is not None:
                warnings.append(_warning(failed, last, name))
                report_warning(warnings[-1])
            try:
                completion = await model.complete(
                    messages,
                    max_tokens=options.max_tokens,
                    temperature=options.temperature,
                    stop=options.stop,
                    response_format=options.response_format,
                )
            except ProviderUnavailable as exc:
                last, failed = exc, name
                continue
            if not warnings:
                return completion
            return Completion(
                text=completion.text,
                model_id=completion.model_id,
                usage=completion.usage,
                warnings=(*completion.warnings, *warnings),
            )
        assert last is not None
        raise last

    async def _stream_with(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[str]:
        """The first available provider's stream."""
        last: ProviderUnavailable | None = None
        failed = ""
        for name, model in self._chain:
            if last is not None:
                report_warning(_warning(failed, last, name))
            deltas = model.stream(
                messages,
                max_tokens=options.max_tokens,
                temperature=options.temperature,
                stop=options.stop,
            )
            try:
                first = await anext(deltas)
            except StopAsyncIteration:
                return
            except ProviderUnavailable as exc:
                last, failed = exc, name
                continue
            yield first
            async for delta in deltas:
                yield delta
            return
        assert last is not None
        raise last
