"""The provider registry: vendor modules and plugins call `register(registry)`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from lorebase.providers.base import ChatModel, Embedder, Reranker

log = logging.getLogger(__name__)

LLMFactory = Callable[[Any], ChatModel]
EmbedderFactory = Callable[[Any], Embedder]
RerankerFactory = Callable[[Any], Reranker]

# Built-ins register exactly like a third-party plugin would.
BUILTIN_MODULES = (
    "lorebase.providers.embeddings.local",
    "lorebase.providers.rerank.cross_encoder",
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
        try:
            factory = self._llms[name.lower()]
        except KeyError:
            raise UnknownProviderError("LLM", name, self.llm_names) from None
        return factory(settings)

    def get_embedder(self, name: str, settings: Any) -> Embedder:
        try:
            factory = self._embedders[name.lower()]
        except KeyError:
            raise UnknownProviderError("embedding", name, self.embedder_names) from None
        return factory(settings)

    def get_reranker(self, name: str, settings: Any) -> Reranker:
        try:
            factory = self._rerankers[name.lower()]
        except KeyError:
            raise UnknownProviderError("reranker", name, self.reranker_names) from None
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
