"""`openrouter`: OpenRouter's OpenAI-compatible API through the official openai SDK, with
its attribution headers (`HTTP-Referer`, `X-Title`)."""

from __future__ import annotations

from lorebase.providers.base import ProviderSettings
from lorebase.providers.openai import OpenAIChatModel, openai_client
from lorebase.providers.registry import Registry
from lorebase.providers.resilience import RetryPolicy
from lorebase.providers.vendor import Connection, require_key

PROVIDER = "openrouter"
DEFAULT_MODEL = "openai/gpt-4o-mini"


def _chat(settings: ProviderSettings) -> OpenAIChatModel:
    key = require_key(
        settings.openrouter_api_key,
        "OPENROUTER_API_KEY is not set (needed by the openrouter provider)",
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
        Connection(client, policy, PROVIDER, [key]),
        model=settings.llm_model or DEFAULT_MODEL,
        max_tokens_param="max_tokens",
    )


def register(registry: Registry) -> None:
    registry.register_llm(PROVIDER, _chat)
