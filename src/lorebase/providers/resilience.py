"""Retries for vendor calls (tenacity): exponential backoff with full jitter on
`ProviderUnavailable` (429, 5xx, timeouts, refused connections), honouring `Retry-After`.

Part of the shared provider layer beside `base`: vendor modules wrap each SDK call with
`call_with_retries` and each stream with `stream_with_retries`."""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_random_exponential,
)

from lorebase.providers.base import ProviderSettings, ProviderUnavailable

log = logging.getLogger("lorebase.providers")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one provider call."""

    max_retries: int = 3
    initial_delay: float = 0.5
    max_delay: float = 8.0
    # A vendor asking us to come back later than this: give up now, so that the caller can
    # fall back or answer 503 with that Retry-After instead of holding the request.
    max_retry_after: float = 30.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> RetryPolicy:
        return cls(
            max_retries=settings.provider_max_retries,
            connect_timeout=settings.provider_connect_timeout,
            read_timeout=settings.provider_read_timeout,
        )


_TRANSPORT_ERRORS = frozenset({"TransportError", "TimeoutException"})


def is_transport_error(exc: BaseException) -> bool:
    """True for httpx's (or the SDKs' httpx2's) connection, protocol and timeout errors, which
    some SDKs let through unwrapped while a stream is being read."""
    return any(cls.__name__ in _TRANSPORT_ERRORS for cls in type(exc).__mro__) or isinstance(
        exc, ConnectionError | TimeoutError
    )


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or HTTP date)."""
    if not headers:
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Wait:
    """Retry-After when the vendor sent one, else exponential backoff with full jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._backoff = wait_random_exponential(
            multiplier=policy.initial_delay, max=policy.max_delay
        )

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ProviderUnavailable) and exc.retry_after is not None:
            return exc.retry_after
        return float(self._backoff(state))


class _Stop:
    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, state: RetryCallState) -> bool:
        if state.attempt_number > self._policy.max_retries:
            return True
        exc = state.outcome.exception() if state.outcome else None
        return (
            isinstance(exc, ProviderUnavailable)
            and exc.retry_after is not None
            and exc.retry_after > self._policy.max_retry_after
        )


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    # `exc` is one of our ProviderErrors: its text is already redacted.
    log.warning(
        "provider call failed (%s: %s); retry %d in %.2fs",
        type(exc).__name__,
        exc,
        state.attempt_number,
        wait,
    )


def _retrying(policy: RetryPolicy) -> AsyncRetrying:
    return AsyncRetrying(
        retry=retry_if_exception_type(ProviderUnavailable),
        wait=_Wait(policy),
        stop=_Stop(policy),
        before_sleep=_log_retry,
        reraise=True,
    )


async def call_with_retries(call: Callable[[], Awaitable[T]], *, policy: RetryPolicy) -> T:
    """Run `call`, retrying it on `ProviderUnavailable` as `policy` says."""
    async for attempt in _retrying(policy):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover


async def stream_with_retries(
    open_stream: Callable[[], AsyncIterator[str]], *, policy: RetryPolicy
) -> AsyncIterator[str]:
    """Iterate a stream, retrying until its first delta; later failures propagate (the
    caller already holds part of the answer)."""
    iterator: AsyncIterator[str] | None = None
    first: str | None = None
    async for attempt in _retrying(policy):
        with attempt:
            iterator = open_stream()
            try:
                first = await anext(iterator)
            except StopAsyncIteration:
                return
    assert iterator is not None
    assert first is not None
    yield first
    async for delta in iterator:
        yield delta
