"""Every router, mounted under `/api/v1` (plus `/metrics` at the root and `/openai/v1`)."""

from __future__ import annotations

from fastapi import FastAPI

from lorebase.api.routes import (
    api_keys,
    auth,
    documents,
    health,
    jobs,
    knowledge,
    openai_compat,
    projects,
    rag,
    sources,
    tasks,
)

API_PREFIX = "/api/v1"


def include_routes(app: FastAPI) -> None:
    for module in (
        health,
        auth,
        api_keys,
        projects,
        tasks,
        documents,
        knowledge,
        sources,
        jobs,
        rag,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(health.metrics_router)
    app.include_router(openai_compat.router)  # at /openai/v1, where OpenAI clients look
