"""The registry: built-ins register like plugins, names are listed when unknown, and a
misconfiguration is one line naming the variable, at start."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from pydantic import SecretStr

from lorebase.errors import ConfigurationError
from lorebase.providers.base import ChatModel, Embedder
from lorebase.providers.fallback import FallbackChatModel
from lorebase.providers.registry import (
    BUILTIN_MODULES,
    Registry,
    UnknownProviderError,
    build_embedder,
    build_llm,
    check_providers,
    load_registry,
)
from lorebase.settings import Settings


def settings(**values: Any) -> Settings:
    values.setdefault("openai_api_key", None)
    values.setdefault("anthropic_api_key", None)
    values.setdefault("openrouter_api_key", None)
    values.setdefault("openai_base_url", None)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_builtins_register_every_vendor() -> None:
    registry = load_registry(plugins=False)
    assert registry.llm_names == [
        "anthropic",
        "extractive",
        "llamacpp",
        "ollama",
        "openai",
        "openrouter",
    ]
    assert {"local", "openai", "ollama"} <= set(registry.embedder_names)
    assert all(name.startswith("lorebase.providers.") for name in BUILTIN_MODULES)


def test_unknown_names_list_the_known_ones() -> None:
    registry = load_registry(plugins=False)
    with pytest.raises(UnknownProviderError, match="known: anthropic, extractive"):
        registry.get_llm("gpt", settings())
    with pytest.raises(KeyError):
        registry.get_embedder("nope", settings())


def test_a_plugin_registers_the_same_way() -> None:
    class Echo:
        model_id = "echo"

    registry = Registry()
    registry.register_llm("Echo", lambda s: Echo())  # type: ignore[arg-type,return-value]
    assert registry.llm_names == ["echo"]
    assert registry.get_llm("ECHO", settings()).model_id == "echo"


def test_defaults_are_extractive_and_local() -> None:
    registry = load_registry(plugins=False)
    llm = build_llm(settings(), registry)
    embedder = build_embedder(settings(), registry)
    assert isinstance(llm, ChatModel)
    assert llm.model_id == "extractive"
    assert isinstance(embedder, Embedder)
    assert (embedder.provider, embedder.model_id, embedder.dimension) == (
        "local",
        "all-MiniLM-L6-v2",
        384,
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"llm_provider": "openai"}, "OPENAI_API_KEY is not set"),
        ({"llm_provider": "anthropic"}, "ANTHROPIC_API_KEY is not set"),
        ({"llm_provider": "openrouter"}, "OPENROUTER_API_KEY is not set"),
        ({"embedding_provider": "openai"}, "OPENAI_API_KEY is not set"),
        ({"llm_provider": "gpt"}, "LLM_PROVIDER names an unknown LLM provider 'gpt'; known:"),
        ({"llm_fallbacks": ["olama"]}, "LLM_FALLBACKS names an unknown LLM provider 'olama'"),
        ({"embedding_provider": "bert"}, "EMBEDDING_PROVIDER names an unknown"),
        (
            {"embedding_provider": "ollama", "embedding_model": "my-embedder"},
            "EMBEDDING_DIMENSIONS is not set",
        ),
        (
            {
                "embedding_provider": "openai",
                "openai_api_key": SecretStr("k"),
                "embedding_model": "text-embedding-ada-002",
                "embedding_dimensions": 256,
            },
            "EMBEDDING_DIMENSIONS=256 does not fit",
        ),
    ],
)
def test_misconfiguration_is_one_line_naming_the_variable(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        check_providers(settings(**values))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_llamacpp_names_its_extra_or_its_model_path() -> None:
    # Without the extra, the extra is what is missing; with it, the GGUF path is checked.
    expected = (
        "LLAMACPP_MODEL_PATH=/nope.gguf is not a file"
        if importlib.util.find_spec("xllamacpp")
        else "needs the optional extra llamacpp (pip install 'lorebase[llamacpp]')"
    )
    with pytest.raises(ConfigurationError) as caught:
        check_providers(settings(llm_provider="llamacpp", llamacpp_model_path="/nope.gguf"))
    assert expected in str(caught.value)


def test_fallbacks_build_a_chain_with_their_own_models() -> None:
    llm = build_llm(
        settings(
            llm_provider="openai",
            llm_model="gpt-4.1",
            openai_api_key=SecretStr("k"),
            llm_fallbacks=["ollama:qwen2.5", "openai", "extractive"],
        ),
        load_registry(plugins=False),
    )
    assert isinstance(llm, FallbackChatModel)
    assert llm.chain == ["openai", "ollama", "extractive"]  # the repeated primary is dropped
    assert llm.model_id == "gpt-4.1"
    assert [model.model_id for _, model in llm._chain] == ["gpt-4.1", "qwen2.5", "extractive"]
