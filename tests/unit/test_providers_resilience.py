"""Retry policy (tenacity): what is retried, how long it waits, when it gives up."""

from __future__ import annotations

import email.utils
import time

import pytest

from lorebase.providers.base import (
    AuthFailed,
    BadResponse,
    ProviderUnavailable,
    RateLimited,
    redact,
    unit_vectors,
)
from lorebase.providers.resilience import (
    RetryPolicy,
    call_with_retries,
    parse_retry_after,
    stream_with_retries,
)

FAST = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.02)


class Flaky:
    """Fails with the given errors, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_retry_after_headers() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= (parse_retry_after({"Retry-After": future}) or 0) <= 30
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None
    assert parse_retry_after(None) is None


async def test_unavailable_is_retried_until_it_answers() -> None:
    flaky = Flaky(ProviderUnavailable("down"), RateLimited("slow", retry_after=0.01))
    assert await call_with_retries(flaky, policy=FAST) == "ok"
    assert flaky.calls == 3


async def test_retries_stop_after_max_retries() -> None:
    flaky = Flaky(*[ProviderUnavailable(f"down {i}") for i in range(5)])
    with pytest.raises(ProviderUnavailable, match="down 3"):
        await call_with_retries(flaky, policy=FAST)
    assert flaky.calls == 4


@pytest.mark.parametrize("error", [AuthFailed("no"), BadResponse("bad request")])
async def test_errors_that_retrying_cannot_fix_are_raised_at_once(error: Exception) -> None:
    flaky = Flaky(error)
    with pytest.raises(type(error)):
        await call_with_retries(flaky, policy=FAST)
    assert flaky.calls == 1


async def test_retry_after_is_waited_exactly() -> None:
    flaky = Flaky(RateLimited("wait", retry_after=0.3))
    started = time.monotonic()
    await call_with_retries(flaky, policy=FAST)
    # Not the backoff (at most 0.02 s here): Retry-After. The upper bound leaves a loaded
    # machine (a parallel suite on two cores) time to wake the loop up.
    assert 0.3 <= time.monotonic() - started < 2.0


async def test_a_retry_after_past_the_cap_is_not_waited() -> None:
    flaky = Flaky(RateLimited("tomorrow", retry_after=3600))
    with pytest.raises(RateLimited):
        await call_with_retries(flaky, policy=FAST)
    assert flaky.calls == 1


async def test_backoff_is_jittered_exponential() -> None:
    policy = RetryPolicy(max_retries=3, initial_delay=0.05, max_delay=0.1)
    flaky = Flaky(*[ProviderUnavailable("x") for _ in range(3)])
    started = time.monotonic()
    await call_with_retries(flaky, policy=policy)
    # Three waits, each random in [0, min(0.05 * 2^n, 0.1)].
    assert time.monotonic() - started < 0.5


async def test_streams_are_retried_only_before_their_first_delta() -> None:
    attempts = 0

    async def refused_once():  # type: ignore[no-untyped-def]
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ProviderUnavailable("refused")
        yield "a"
        yield "b"

    assert [d async for d in stream_with_retries(refused_once, policy=FAST)] == ["a", "b"]
    assert attempts == 2

    async def dies_midway():  # type: ignore[no-untyped-def]
        nonlocal attempts
        attempts += 1
        yield "a"
        raise ProviderUnavailable("cut")

    attempts = 0
    received: list[str] = []

    async def drain() -> None:
        async for delta in stream_with_retries(dies_midway, policy=FAST):
            received.append(delta)

    with pytest.raises(ProviderUnavailable, match="cut"):
        await drain()
    assert received == ["a"]
    assert attempts == 1


def test_redact_hides_keys_and_their_fragments() -> None:
    key = "sk-proj-0123456789abcdefghijKLMNOP"
    text = f"bad key {key}; you sent sk-proj-***hijKLMNOP"
    cleaned = redact(text, [key])
    assert key not in cleaned
    assert "hijKLMNOP" not in cleaned
    assert cleaned.startswith("bad key ***")
    assert redact("nothing secret", [key, ""]) == "nothing secret"


def test_unit_vectors() -> None:
    assert unit_vectors([[3.0, 4.0]], provider="p") == [[0.6, 0.8]]
    with pytest.raises(BadResponse):
        unit_vectors([[0.0, 0.0]], provider="p")
    with pytest.raises(BadResponse):
        unit_vectors([[float("nan"), 1.0]], provider="p")
    with pytest.raises(BadResponse, match="not lists of numbers"):
        unit_vectors([[1.0, 0.0], [1.0]], provider="p")  # ragged
    with pytest.raises(BadResponse, match="not lists of numbers"):
        unit_vectors([["a", "b"]], provider="p")  # type: ignore[list-item]
    assert unit_vectors([], provider="p") == []
