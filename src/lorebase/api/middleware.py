"""One pure-ASGI middleware: request id, access log, metrics and the last-resort 500."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lorebase.api.problems import render_problem
from lorebase.errors import OPAQUE
from lorebase.logs import request_id_var

log = logging.getLogger("lorebase.access")
error_log = logging.getLogger(__name__)

REQUESTS = Counter("lorebase_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "lorebase_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

_VALID_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def _route_of(scope: Scope) -> str:
    """The matched route's template with its router prefix (`/api/v1/projects/{project_id}`),
    so metrics have one series per route rather than per id."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return "unmatched"
    path: str = scope["path"]
    try:
        concrete = template.format(**scope.get("path_params", {}))
    except (KeyError, IndexError, ValueError):
        return template
    if path.endswith(concrete):
        return path[: len(path) - len(concrete)] + template
    return template


_Series = tuple[Any, Any]
# Labelled children of REQUESTS and LATENCY by (method, route, status): `.labels()` takes a
# lock and builds a key on every call, and every request would pay it twice.
_series: dict[tuple[str, str, int], _Series] = {}


def _series_of(method: str, route: str, status: int) -> _Series:
    key = (method, route, status)
    series = _series.get(key)
    if series is None:
        code = str(status)
        series = (REQUESTS.labels(method, route, code), LATENCY.labels(method, route, code))
        _series[key] = series
    return series


class RequestContextMiddleware:
    """Honours or makes `X-Request-ID`, echoes it, logs one access line and counts the request."""

    def __init__(self, app: ASGIApp, *, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _VALID_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode())
        status = 500
        started = False
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            error_log.exception("unhandled error", extra={"path": scope.get("path")})
            if started:
                raise
            status = 500
            await self._send_500(scope, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = _route_of(scope)
            method = scope["method"]
            counter, histogram = _series_of(method, route, status)
            counter.inc()
            histogram.observe(elapsed)
            if self.access_log:
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)

    @staticmethod
    async def _send_500(scope: Scope, send: Send) -> None:
        # The one rendering: problem+json, or OpenAI's error shape under /openai/.
        status, media, payload = render_problem(OPAQUE, instance=scope.get("path", ""))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", media.encode()),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
