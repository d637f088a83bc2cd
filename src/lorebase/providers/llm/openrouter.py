"""`openrouter`: OpenRouter's OpenAI-compatible API through the official openai SDK, with
its attribution headers (`HTTP-Referer`, `X-Title`)."""

from __future__ import annotations

from typing import Any

from lorebase.providers.base import ConfigurationError, ProviderSettings
from lorebase.providers.llm.openai import OpenAIChatModel, openai_client
from lorebase.providers.resilience import RetryPolicy

PROVIDER = "openrouter"
DEFAULT_MODEL = "openai/gpt-4o-mini"


def _factory(settings: ProviderSettings) -> OpenAIChatModel:
    key = settings.openrouter_api_key.get_secret_value() if settings.openrouter_api_key else ""
    if not key:
        raise ConfigurationError(
            "OPENROUTER_API_KEY is not set (needed by the openrouter provider)"
        )
    policy = RetryPolicy.from_settings(settings)
    client = openai_client(
        api_key=key,
        base_url=settings.openrouter_base_url,
        policy=policy,
        default_headers={
            "HTTP-Referer": settings.openrouter_app_url,
            "X-Title": settings.openrouter_app_name,
        },
    )
    return OpenAIChatModel(
        client=client,
        model=settings.llm_model or DEFAULT_MODEL,
        policy=policy,
        provider=PROVIDER,
        secrets=[key],
        max_tokens_param="max_tokens",
    )


def register(registry: Any) -> None:
    registry.register_llm(PROVIDER, _factory)
