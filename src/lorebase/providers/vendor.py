"""The thin base every remote vendor module builds on (as simonw/llm's `openai_models.py` does
for its models): the key, the SDK client's model and retry policy, secret redaction, and the ONE
table from a vendor's HTTP status to our ProviderError.

A vendor module keeps only what is its own: how to build its SDK client, how to read its SDK's
exceptions (`classify`), and the request/response shapes of its API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from lorebase.providers.base import (
    AuthFailed,
    BadResponse,
    ConfigurationError,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    SecretValue,
    redact,
    unit_vectors,
)
from lorebase.providers.resilience import (
    RetryPolicy,
    call_with_retries,
    is_transport_error,
    parse_retry_after,
    stream_with_retries,
)

C = TypeVar("C")
T = TypeVar("T")


def secret_of(value: SecretValue | None) -> str:
    """The key's text, or "" when it is not set."""
    return value.get_secret_value() if value is not None else ""


def require_key(value: SecretValue | None, message: str) -> str:
    """The key's text; a ConfigurationError with `message` when it is not set."""
    key = secret_of(value)
    if not key:
        raise ConfigurationError(message)
    return key


def vendor_message(body: object) -> str:
    """The human message of a vendor's error body (`{"error": {"message"}}`, `{"error": str}`,
    `{"message"}` or plain text), at most 300 characters; "" when there is none."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        if isinstance(body.get("message"), str):
            return str(body["message"])[:300]
    if isinstance(body, str):
        return body[:300]
    return ""


def status_error(
    provider: str,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    *,
    secrets: Sequence[str] = (),
) -> ProviderError:
    """THE table from a vendor's HTTP error status to ours: 401/403 a refused key, 429 rate
    limited, 408/409/5xx (529 "overloaded") unavailable, any other 4xx a bad response."""
    message = redact(f"{provider} answered {status}: {detail or 'error'}", secrets)
    retry_after = parse_retry_after(dict(headers or {}))
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


@dataclass(frozen=True)
class HttpFailure:
    """What a vendor's SDK exception says about the HTTP exchange, read by its `classify`."""

    kind: str  # "timeout", "unreachable", "status", "unreadable" or "other"
    status: int = 0
    detail: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)


def map_failure(
    exc: Exception,
    failure: HttpFailure,
    *,
    provider: str,
    secrets: Sequence[str],
) -> ProviderError:
    """The ProviderError for an SDK exception its vendor module classified; the SDK object and
    its text are dropped (they may carry the key or the request)."""
    if isinstance(exc, ProviderError):
        return exc
    if failure.kind == "timeout":
        return ProviderUnavailable(f"{provider} timed out", provider=provider)
    if failure.kind == "unreachable":
        return ProviderUnavailable(f"{provider} is unreachable", provider=provider)
    if failure.kind == "status":
        return status_error(
            provider, failure.status, failure.detail, failure.headers, secrets=secrets
        )
    if is_transport_error(exc):
        return ProviderUnavailable(f"{provider} connection failed", provider=provider)
    if failure.kind == "unreadable":
        return BadResponse(f"{provider} sent a response we cannot read", provider=provider)
    return BadResponse(f"{provider} failed: {type(exc).__name__}", provider=provider)


@dataclass(frozen=True)
class Connection(Generic[C]):
    """How a vendor's models reach it: the SDK client (our timeouts, no SDK retries), the
    retry policy, the vendor's registry name and the secrets to redact from every message."""

    client: C
    policy: RetryPolicy
    provider: str
    secrets: Sequence[str] = ()


class VendorModel(Generic[C]):
    """What a vendor's chat model or embedder holds: its connection and the model; `_map`
    reads the SDK's errors."""

    generative = True

    def __init__(self, connection: Connection[C], *, model: str) -> None:
        self._client = connection.client
        self._model = model
        self._policy = connection.policy
        self._provider = connection.provider
        self._secrets = tuple(secret for secret in connection.secrets if secret)

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def model_id(self) -> str:
        return self._model

    def warm_up(self) -> None:
        """Nothing to load: the model runs at the vendor."""

    def _classify(self, exc: Exception) -> HttpFailure:
        return HttpFailure("other")

    def _map(self, exc: Exception) -> ProviderError:
        return map_failure(exc, self._classify(exc), provider=self._provider, secrets=self._secrets)

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """`call` (one SDK request), its errors mapped, retried as the policy says."""

        async def once() -> T:
            try:
                return await call()
            except Exception as exc:
                raise self._map(exc) from None

        return await call_with_retries(once, policy=self._policy)

    def _stream(self, open_stream: Callable[[], AsyncIterator[str]]) -> AsyncIterator[str]:
        """The deltas of `open_stream()`, its errors mapped, retried until the first delta."""

        async def once() -> AsyncIterator[str]:
            try:
                async for delta in open_stream():
                    yield delta
            except Exception as exc:
                raise self._map(exc) from None

        return stream_with_retries(once, policy=self._policy)


class VendorEmbedder(VendorModel[C]):
    """A remote embedder: unit vectors of one dimension, checked for count and dimension."""

    max_batch: int
    max_input_tokens: int
    max_batch_tokens: int

    def __init__(self, connection: Connection[C], *, model: str, dimension: int) -> None:
        super().__init__(connection, model=model)
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        return self._dimension

    def _checked(self, vectors: list[list[float]], texts: Sequence[str]) -> list[list[float]]:
        if len(vectors) != len(texts):
            raise BadResponse(
                f"{self._provider} returned {len(vectors)} vectors for {len(texts)} texts",
                provider=self._provider,
            )
        if any(len(v) != self._dimension for v in vectors):
            raise BadResponse(
                f"{self._provider} returned vectors of another dimension than "
                f"{self._dimension} for {self._model} (set EMBEDDING_DIMENSIONS)",
                provider=self._provider,
            )
        return unit_vectors(vectors, provider=self._provider)
