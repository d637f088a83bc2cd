"""What services see of a provider: small Protocols, the ProviderError tree, the settings a
vendor reads, the numbered-sources prompt format and the fallback-warning channel."""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

# Re-exported so vendor modules see one module of ours. A factory raises ConfigurationError for
# a setting that cannot work (a missing key), and `lorebase serve` prints it as one line; the
# ProviderError tree lives in `errors`, beside the one mapping that renders it for clients.
from lorebase.errors import (
    AuthFailed,
    BadResponse,
    ConfigurationError,
    ProviderError,
    ProviderUnavailable,
)
from lorebase.errors import ProviderRateLimited as RateLimited

__all__ = [
    "AuthFailed",
    "BadResponse",
    "ChatBase",
    "ChatModel",
    "ChatOptions",
    "Completion",
    "ConfigurationError",
    "Embedder",
    "Message",
    "ProviderError",
    "ProviderSettings",
    "ProviderUnavailable",
    "RateLimited",
    "SecretValue",
    "Source",
    "TokenCounter",
    "Usage",
    "collect_warnings",
    "format_sources",
    "parse_sources",
    "redact",
    "report_warning",
    "unit_vectors",
]

log = logging.getLogger("lorebase.providers")


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
    # Set when a fallback provider answered: add them to the response's `warnings`.
    warnings: tuple[str, ...] = ()


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: one answer, or a stream of text deltas.

    `generative` is False for a model that only extracts (no text of its own to rerank with
    or to write contexts); `warm_up` loads a local model before the first request."""

    @property
    def model_id(self) -> str: ...

    @property
    def generative(self) -> bool: ...

    def warm_up(self) -> None: ...

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


@dataclass(frozen=True)
class ChatOptions:
    """One request's generation options, as a model implementation receives them.
    `response_format` (a JSON schema or mode) is set only for `complete`."""

    max_tokens: int = 512
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None


class ChatBase(ABC):
    """`ChatModel.complete` and `.stream` written once: the keyword options callers pass are
    handed to the model as one `ChatOptions` (`_complete_with`, `_stream_with`)."""

    async def complete(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> Completion:
        options = ChatOptions(max_tokens, temperature, tuple(stop or ()), response_format)
        return await self._complete_with(messages, options)

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
    ) -> AsyncIterator[str]:
        return self._stream_with(messages, ChatOptions(max_tokens, temperature, tuple(stop or ())))

    @abstractmethod
    async def _complete_with(self, messages: Sequence[Message], options: ChatOptions) -> Completion:
        """One answer."""

    @abstractmethod
    def _stream_with(self, messages: Sequence[Message], options: ChatOptions) -> AsyncIterator[str]:
        """The answer's text deltas."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit vectors of one embedding space (model id + dimension).

    `provider` is the registry name (the embedding cache key); `max_batch` caps texts per call,
    `max_batch_tokens` the tokens per call, `max_input_tokens` one text."""

    @property
    def provider(self) -> str: ...

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_batch(self) -> int: ...

    @property
    def max_input_tokens(self) -> int: ...

    @property
    def max_batch_tokens(self) -> int: ...

    def warm_up(self) -> None:
        """Load a local model now rather than on the first request (remote: nothing)."""

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]: ...


@runtime_checkable
class TokenCounter(Protocol):
    """An embedder or model that can count tokens with its own tokenizer."""

    def count_tokens(self, text: str) -> int: ...


@runtime_checkable
class Reranker(Protocol):
    """Scores passages against a query (higher is more relevant), one score per passage."""

    @property
    def model_id(self) -> str: ...

    async def score(self, query: str, passages: Sequence[str]) -> list[float]: ...


# --- what a vendor reads from the settings -------------------------------------------------


class SecretValue(Protocol):
    """A key that prints as `**********` (pydantic's SecretStr)."""

    def get_secret_value(self) -> str: ...


class ProviderSettings(Protocol):
    """The settings vendor factories read; `lorebase.settings.Settings` satisfies it. The keys
    are read-only properties so that a `SecretStr` field satisfies `SecretValue`."""

    llm_model: str | None
    embedding_model: str | None
    embedding_dimensions: int | None
    provider_connect_timeout: float
    provider_read_timeout: float
    provider_max_retries: int

    @property
    def openai_api_key(self) -> SecretValue | None: ...

    openai_base_url: str | None

    @property
    def anthropic_api_key(self) -> SecretValue | None: ...

    anthropic_base_url: str | None
    ollama_base_url: str

    @property
    def openrouter_api_key(self) -> SecretValue | None: ...

    openrouter_base_url: str
    openrouter_app_url: str
    openrouter_app_name: str
    llamacpp_model_path: Any


def redact(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret (and any 8+ character tail of it a vendor echoes) masked."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "***")
        # Vendors echo keys partially masked ("sk-abc...wxyz"): hide any long fragment too.
        if len(secret) >= 16:
            for size in (12, 8):
                for start in range(0, len(secret) - size + 1):
                    fragment = secret[start : start + size]
                    if fragment in text:
                        text = text.replace(fragment, "***")
    return text


def unit_vectors(vectors: Sequence[Sequence[float]], *, provider: str) -> list[list[float]]:
    """L2-normalise (cosine search assumes unit vectors); a zero or non-finite one is bad.
    In numpy: a 1536-d vector in pure Python cost ~0.15 ms, on every search's path."""
    if not vectors:
        return []
    try:
        matrix = np.asarray(vectors, dtype=np.float64)
    except (ValueError, TypeError):
        matrix = np.empty(0)
    if matrix.ndim != 2:
        raise BadResponse(
            f"{provider} returned vectors that are not lists of numbers", provider=provider
        )
    norms = np.linalg.norm(matrix, axis=1)
    if not bool(np.all(np.isfinite(norms))) or bool(np.any(norms == 0.0)):
        raise BadResponse(f"{provider} returned a zero or non-finite vector", provider=provider)
    unit: list[list[float]] = (matrix / norms[:, None]).tolist()
    return unit


# --- warnings a fallback reports --------------------------------------------------------------

_warnings: ContextVar[list[str] | None] = ContextVar("lorebase_provider_warnings", default=None)


@contextmanager
def collect_warnings() -> Iterator[list[str]]:
    """Collect the warnings providers report (a fallback answered) while the block runs.

    Wrap the calls *and* the iteration of a stream: the list fills as they happen."""
    bucket: list[str] = []
    token = _warnings.set(bucket)
    try:
        yield bucket
    finally:
        _warnings.reset(token)


def report_warning(message: str) -> None:
    """Log `message` and add it to the innermost `collect_warnings()` block, once."""
    log.warning(message)
    bucket = _warnings.get()
    if bucket is not None and message not in bucket:
        bucket.append(message)


# --- the numbered-sources prompt -------------------------------------------------------------
#
# One format for every chat model, so that the extractive answerer (no model) can read the
# prompt that an LLM would get:
#
#   system:  SOURCES_INSTRUCTIONS
#   user:    Sources:
#            [1] first passage, first line
#                continuation lines are indented by four spaces
#            [2] second passage
#
#            Question: the question (may span lines)

SOURCES_INSTRUCTIONS = (
    "Answer the question using only the numbered sources. Cite every claim with the number of "
    "its source in square brackets, like [1] or [2][3]. If the sources do not contain the "
    "answer, say that they do not."
)
_INDENT = "    "
_SOURCE_LINE = re.compile(r"^\[(\d+)\] ?(.*)$")


@dataclass(frozen=True)
class Source:
    """One numbered passage of a sources prompt."""

    number: int
    text: str


def format_sources(
    question: str, passages: Sequence[str], *, instructions: str = SOURCES_INSTRUCTIONS
) -> list[Message]:
    """A system + user prompt listing `passages` as sources [1], [2]... and the question."""
    lines = ["Sources:"]
    for number, passage in enumerate(passages, start=1):
        first, *rest = passage.strip().splitlines() or [""]
        lines.append(f"[{number}] {first}")
        lines.extend(_INDENT + line if line.strip() else "" for line in rest)
    lines += ["", f"Question: {question.strip()}"]
    return [Message("system", instructions), Message("user", "\n".join(lines))]


def parse_sources(messages: Sequence[Message]) -> tuple[str, list[Source]] | None:
    """The question and sources of a `format_sources` prompt, or None if it is not one."""
    user = next((m.content for m in reversed(messages) if m.role == "user"), None)
    if user is None:
        return None
    lines = user.splitlines()
    try:
        start = lines.index("Sources:")
    except ValueError:
        return None
    question_at = next(
        (i for i in range(len(lines) - 1, start, -1) if lines[i].startswith("Question:")), None
    )
    if question_at is None:
        return None
    question = "\n".join([lines[question_at][len("Question:") :], *lines[question_at + 1 :]])
    sources: list[Source] = []
    current: list[str] = []
    number = 0
    for line in lines[start + 1 : question_at]:
        match = _SOURCE_LINE.match(line)
        if match:
            if number:
                sources.append(Source(number, "\n".join(current).strip()))
            number, current = int(match.group(1)), [match.group(2)]
        elif number:
            current.append(line.removeprefix(_INDENT))
    if number:
        sources.append(Source(number, "\n".join(current).strip()))
    return question.strip(), sources
