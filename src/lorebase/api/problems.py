"""Render every error as RFC 9457 problem+json with the request id, through the one mapping
`lorebase.errors.problem_from` (MCP and the SSE `error` event render the same `Problem`)."""

from __future__ import annotations

from http import HTTPStatus

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from lorebase.answering.openai_schemas import openai_error
from lorebase.errors import AppError, Invalid, Problem, ProviderError, invalid_from, problem_from

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


# The OpenAI-compatible routes answer errors in OpenAI's shape, which the OpenAI SDKs parse.
OPENAI_PATHS = "/openai/"


def render_problem(problem: Problem, *, instance: str) -> tuple[int, str, bytes]:
    """Status, media type and body of `problem` at path `instance`: problem+json, or OpenAI's
    `{"error": {...}}` under `/openai/`."""
    if instance.startswith(OPENAI_PATHS):
        status, body = openai_error(problem)
        return status, "application/json", orjson.dumps(body)
    return problem.status, PROBLEM_JSON, orjson.dumps(problem.body(instance=instance))


def problem_response(problem: Problem, *, instance: str) -> Response:
    """`problem` as problem+json, with its headers (`Retry-After`, `WWW-Authenticate`)."""
    status, media, body = render_problem(problem, instance=instance)
    return Response(body, status_code=status, media_type=media, headers=dict(problem.headers))


async def _mapped_error(request: Request, exc: Exception) -> Response:
    # AppError and ProviderError: the one mapping in `lorebase.errors`.
    return problem_response(problem_from(exc), instance=request.url.path)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    invalid = invalid_from(raw)
    for error in raw:
        if error.get("type") == "json_invalid":
            # The location is a character offset, not a field: say what is wrong and where.
            reason = str((error.get("ctx") or {}).get("error", "malformed JSON"))
            position = error.get("loc", ("body", "?"))[-1]
            detail = f"the body is not valid JSON: {reason} at character {position}"
            invalid = Invalid(detail, errors=invalid.errors)
            break
    return problem_response(problem_from(invalid), instance=request.url.path)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    detail = exc.detail if isinstance(exc.detail, str) else title
    slug = _HTTP_TYPES.get(status, "http-error")
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    problem = Problem(status, slug, title, detail, headers)
    return problem_response(problem, instance=request.url.path)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        match, _ = route.matches({**request.scope, "method": ""})
        if match is not Match.NONE and route.methods:
            methods |= set(route.methods)
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _mapped_error)
    app.add_exception_handler(ProviderError, _mapped_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Unexpected exceptions are rendered by RequestContextMiddleware, inside the request's
    # context, so the opaque 500 still carries the request id.
