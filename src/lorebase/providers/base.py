"""What services see of a provider: small Protocols and the ProviderError tree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable


class ProviderError(Exception):
    """A provider failed; vendor modules map SDK errors onto the subclasses."""

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None):
        super().__init__(message)
        self.provider = provider
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """Unreachable, timed out or 5xx: worth retrying later or falling back."""


class RateLimited(ProviderUnavailable):
    """429 from the vendor; `retry_after` says when to come back."""


class AuthFailed(ProviderError):
    """The key was refused (401/403): retrying will not help."""


class BadResponse(ProviderError):
    """The vendor answered something we cannot use (400, malformed body)."""


@dataclass(frozen=True)
class Message:
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    model_id: str
    usage: Usage = field(default_factory=Usage)


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: one answer, or a stream of text deltas."""

    @property
    def model_id(self) -> str: ...

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion: ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[str]: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors of one embedding space (model id + dimension)."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_batch(self) -> int: ...

    @property
    def max_input_tokens(self) -> int: ...

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]: ...


@runtime_checkable
class Reranker(Protocol):
    """Scores passages against a query (higher is more relevant), one score per passage."""

    @property
    def model_id(self) -> str: ...

    async def score(self, query: str, passages: Sequence[str]) -> list[float]: ...
