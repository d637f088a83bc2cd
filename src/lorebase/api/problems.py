"""Render every error as RFC 9457 problem+json with the request id, through the one mapping
`lorebase.errors.problem_from` (MCP and the SSE `error` event render the same `Problem`)."""

from __future__ import annotations

from http import HTTPStatus

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from lorebase.errors import AppError, Problem, ProviderError, invalid_from, problem_from

PROBLEM_JSON = "application/problem+json"

_HTTP_TYPES = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-error",
    429: "rate-limited",
    503: "service-unavailable",
}


def problem_response(problem: Problem, *, instance: str) -> Response:
    """`problem` as problem+json, with its headers (`Retry-After`, `WWW-Authenticate`)."""
    return Response(
        orjson.dumps(problem.body(instance=instance)),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=dict(problem.headers),
    )


async def _mapped_error(request: Request, exc: Exception) -> Response:
    # AppError and ProviderError: the one mapping in `lorebase.errors`.
    return problem_response(problem_from(exc), instance=request.url.path)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return problem_response(problem_from(invalid_from(exc.errors())), instance=request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    detail = exc.detail if isinstance(exc.detail, str) else title
    slug = _HTTP_TYPES.get(status, "http-error")
    problem = Problem(status, slug, title, detail, dict(exc.headers or {}))
    return problem_response(problem, instance=request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _mapped_error)
    app.add_exception_handler(ProviderError, _mapped_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Unexpected exceptions are rendered by RequestContextMiddleware, inside the request's
    # context, so the opaque 500 still carries the request id.
