"""The provider registry: vendor modules and plugins call `register(registry)`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, TypeVar

from lorebase.providers.base import (
    ChatModel,
    ConfigurationError,
    Embedder,
    ProviderSettings,
    Reranker,
)
from lorebase.providers.fallback import FallbackChatModel

log = logging.getLogger(__name__)

T = TypeVar("T")

LLMFactory = Callable[[ProviderSettings], ChatModel]
EmbedderFactory = Callable[[ProviderSettings], Embedder]
RerankerFactory = Callable[[ProviderSettings], Reranker]

# One module per vendor, registering everything that vendor offers (chat, embeddings,
# reranking). Built-ins register exactly like a third-party plugin would.
BUILTIN_MODULES = (
    "lorebase.providers.local",
    "lorebase.providers.cross_encoder",
    "lorebase.providers.extractive",
    "lorebase.providers.openai",
    "lorebase.providers.anthropic",
    "lorebase.providers.ollama",
    "lorebase.providers.openrouter",
    "lorebase.providers.llamacpp",
)

ENTRY_POINT_GROUP = "lorebase.providers"


class UnknownProviderError(KeyError):
    """No provider of that name; the message lists the known ones."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} provider {name!r}; known: {', '.join(known) or 'none'}")

    def __str__(self) -> str:
        return str(self.args[0])


class Registry:
    """Named factories for chat models and embedders; each takes the Settings."""

    def __init__(self) -> None:
        self._llms: dict[str, LLMFactory] = {}
        self._embedders: dict[str, EmbedderFactory] = {}
        self._rerankers: dict[str, RerankerFactory] = {}

    def register_llm(self, name: str, factory: LLMFactory) -> None:
        self._llms[name.lower()] = factory

    def register_embedder(self, name: str, factory: EmbedderFactory) -> None:
        self._embedders[name.lower()] = factory

    def register_reranker(self, name: str, factory: RerankerFactory) -> None:
        self._rerankers[name.lower()] = factory

    @property
    def llm_names(self) -> list[str]:
        return sorted(self._llms)

    @property
    def embedder_names(self) -> list[str]:
        return sorted(self._embedders)

    @property
    def reranker_names(self) -> list[str]:
        return sorted(self._rerankers)

    def get_llm(self, name: str, settings: Any) -> ChatModel:
        return _build("LLM", self._llms, name, settings)

    def get_embedder(self, name: str, settings: Any) -> Embedder:
        return _build("embedding", self._embedders, name, settings)

    def get_reranker(self, name: str, settings: Any) -> Reranker:
        return _build("reranker", self._rerankers, name, settings)


def _build(kind: str, factories: dict[str, Callable[[Any], T]], name: str, settings: Any) -> T:
    """What the factory registered as `name` makes of the settings; an unknown name raises
    UnknownProviderError listing the known ones."""
    try:
        factory = factories[name.lower()]
    except KeyError:
        raise UnknownProviderError(kind, name, sorted(factories)) from None
    return factory(settings)


def load_registry(*, plugins: bool = True) -> Registry:
    """A registry with the built-ins and every installed `lorebase.providers` plugin."""
    registry = Registry()
    for module_name in BUILTIN_MODULES:
        import_module(module_name).register(registry)
    if plugins:
        for entry in entry_points(group=ENTRY_POINT_GROUP):
            # A broken plugin must be visible, not silently skipped.
            entry.load().register(registry)
    return registry


def _with_model(settings: Any, model: str | None) -> Any:
    # LLM_MODEL names the primary's model; a fallback gets its own (`name:model`) or its default.
    return settings.model_copy(update={"llm_model": model})


def build_llm(settings: Any, registry: Registry) -> ChatModel:
    """`LLM_PROVIDER` (with `LLM_MODEL`), wrapped in a FallbackChatModel when `LLM_FALLBACKS`
    names others (`openai,ollama:llama3.2,extractive`). Misconfiguration raises
    ConfigurationError naming the variable."""
    chain: list[tuple[str, ChatModel]] = []
    names = [(settings.llm_provider, settings.llm_model, "LLM_PROVIDER")]
    for entry in settings.llm_fallbacks:
        name, _, model = entry.partition(":")
        names.append((name.strip().lower(), model.strip() or None, "LLM_FALLBACKS"))
    for index, (name, model, variable) in enumerate(names):
        if any(name == known for known, _ in chain) and not model:
            continue
        try:
            llm = registry.get_llm(name, settings if index == 0 else _with_model(settings, model))
        except UnknownProviderError as exc:
            raise ConfigurationError(
                f"{variable} names an unknown LLM provider {name!r}; "
                f"known: {', '.join(exc.known)}"
            ) from None
        chain.append((name, llm))
    if len(chain) == 1:
        return chain[0][1]
    return FallbackChatModel(chain)


def build_embedder(settings: Any, registry: Registry) -> Embedder:
    """`EMBEDDING_PROVIDER` (with `EMBEDDING_MODEL`); misconfiguration raises
    ConfigurationError naming the variable."""
    try:
        return registry.get_embedder(settings.embedding_provider, settings)
    except UnknownProviderError as exc:
        raise ConfigurationError(
            f"EMBEDDING_PROVIDER names an unknown embedding provider {exc.name!r}; "
            f"known: {', '.join(exc.known)}"
        ) from None


def check_providers(settings: Any) -> None:
    """Build the configured providers once (no network) so that `lorebase serve` fails at
    start, with one line, on a missing key or an unknown name."""
    registry = load_registry()
    build_embedder(settings, registry)
    build_llm(settings, registry)
