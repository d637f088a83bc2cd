"""The long-lived objects a running Lorebase holds; built in `main`'s lifespan (or the CLI)
and handed to services explicitly. Nothing here is created at import time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from lorebase.auth.tokens import TokenCache
from lorebase.cache import Cache
from lorebase.db import Database
from lorebase.embedded import start_services
from lorebase.embedding.service import EmbeddingBatcher
from lorebase.embedding.shared import share_local_model
from lorebase.memo import CountMemo
from lorebase.memory import watch_process_caches
from lorebase.providers.base import ChatModel, Embedder, Reranker
from lorebase.providers.http import close_clients
from lorebase.providers.registry import Registry, build_embedder, build_llm, load_registry
from lorebase.settings import Settings


@dataclass
class AppContext:
    """Settings, database pool, cache, providers: what every service call may need."""

    settings: Settings
    db: Database
    cache: Cache
    registry: Registry
    embedder: Embedder
    llm: ChatModel
    secret_key: str
    # Verified access tokens (signed with `secret_key`), so a request does not re-run PyJWT.
    tokens: TokenCache = field(default_factory=TokenCache)
    # Built by retrieval on first use and kept for the context's life (one set per process):
    # rerankers by id (a cross-encoder loads a model), query-embedding batchers by embedder,
    # and the document-frequency memo in front of Redis (FREQUENCY_MEMO_ENTRIES).
    rerankers: dict[str, Reranker | None] = field(default_factory=dict)
    query_batchers: dict[int, EmbeddingBatcher] = field(default_factory=dict)
    frequency_memo: CountMemo[Any] = field(default_factory=CountMemo)


@asynccontextmanager
async def open_context(settings: Settings) -> AsyncIterator[AppContext]:
    """Start what is not configured, connect, load providers; undo it all on exit."""
    # Providers first: a missing key or unknown name (ConfigurationError) fails before anything
    # is started.
    registry = load_registry()
    # A worker of a multi-worker `lorebase serve` embeds through the parent's one local model.
    embedder = share_local_model(build_embedder(settings, registry))
    llm = build_llm(settings, registry)
    # An answerer that reads by meaning (extractive) uses the query embedder, loaded anyway.
    use_embedder = getattr(llm, "use_embedder", None)
    if callable(use_embedder):
        use_embedder(embedder)
    services = await asyncio.to_thread(start_services, settings)
    db: Database | None = None
    cache: Cache | None = None
    try:
        db = Database(
            services.database_url,
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
            max_lifetime=settings.database_pool_max_lifetime_seconds,
            max_idle=settings.database_pool_max_idle_seconds,
            session_settings={"hnsw.ef_search": str(settings.hnsw_ef_search)},
            replica_conninfos=[url.get_secret_value() for url in settings.database_replica_urls],
        )
        await db.open()
        ttls = {
            "qemb": settings.query_embedding_ttl_seconds,
            "df": settings.frequency_cache_ttl_seconds,
        }
        cache = Cache(services.redis_url, prefix=settings.redis_prefix, ttls=ttls)
        for provider in (embedder, llm):
            await asyncio.to_thread(provider.warm_up)
        ctx = AppContext(
            settings=settings,
            db=db,
            cache=cache,
            registry=registry,
            embedder=embedder,
            llm=llm,
            secret_key=services.secret_key,
            tokens=TokenCache(max_entries=settings.token_cache_entries),
            frequency_memo=CountMemo(settings.frequency_memo_entries),
        )
        watch_process_caches(ctx)
        yield ctx
    finally:
        await close_clients()
        if cache is not None:
            await cache.close()
        if db is not None:
            await db.close()
        await asyncio.to_thread(services.stop)
