"""`GET /health` and the Prometheus `GET /metrics`."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from lorebase import __version__
from lorebase.api.deps import ContextDep

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])


class HealthRead(BaseModel):
    status: Literal["ok", "degraded", "down"]
    database: Literal["ok", "down"]
    cache: Literal["ok", "down"]
    version: str


@router.get("/health", response_model=HealthRead)
async def get_health(ctx: ContextDep, response: Response) -> HealthRead:
    db_ok, cache_ok = await asyncio.gather(ctx.db.ping(), ctx.cache.ping())
    if not db_ok:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    status: Literal["ok", "degraded", "down"] = (
        "down" if not db_ok else ("ok" if cache_ok else "degraded")
    )
    return HealthRead(
        status=status,
        database="ok" if db_ok else "down",
        cache="ok" if cache_ok else "down",
        version=__version__,
    )


@router.get("/health/ready", response_model=HealthRead)
async def get_readiness(ctx: ContextDep, response: Response) -> HealthRead:
    """Readiness for a load balancer: 200 only when the database AND Redis answer."""
    health = await get_health(ctx, response)
    if health.status != "ok":
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return health


@metrics_router.get("/metrics", include_in_schema=False)
async def get_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
