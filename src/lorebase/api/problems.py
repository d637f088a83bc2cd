"""Render every error as RFC 9457 problem+json with the request id."""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from lorebase.errors import PROBLEM_BASE, AppError
from lorebase.logs import request_id_var
from lorebase.providers.base import AuthFailed, ProviderError, ProviderUnavailable

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


def problem_body(
    *,
    status: int,
    type_: str,
    title: str,
    detail: str,
    instance: str,
    errors: list[dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": request_id_var.get(),
    }
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def problem_response(
    request: Request, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=int(body["status"]),
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _clean_errors(errors: Any) -> list[dict[str, Any]]:
    cleaned = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        cleaned.append(
            {
                "loc": loc,
                "field": ".".join(part for part in loc if part not in ("body", "query", "path")),
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return cleaned


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    body = problem_body(
        status=exc.status,
        type_=exc.type_uri,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        errors=exc.errors,
        extra=exc.extra,
    )
    return problem_response(request, body, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    errors = _clean_errors(raw)
    fields = ", ".join(sorted({e["field"] or ".".join(e["loc"]) for e in errors}))
    detail = f"invalid request: {fields}" if fields else "invalid request"
    for error in raw:
        if error.get("type") == "json_invalid":
            # The location is a character offset, not a field: say what is wrong and where.
            reason = str((error.get("ctx") or {}).get("error", "malformed JSON"))
            position = error.get("loc", ("body", "?"))[-1]
            detail = f"the body is not valid JSON: {reason} at character {position}"
            errors[0]["field"] = "body"
            break
    body = problem_body(
        status=422,
        type_=PROBLEM_BASE + "validation-error",
        title="Validation Error",
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return problem_response(request, body)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    detail = exc.detail if isinstance(exc.detail, str) else title
    body = problem_body(
        status=status,
        type_=PROBLEM_BASE + _HTTP_TYPES.get(status, "http-error"),
        title=title,
        detail=detail,
        instance=request.url.path,
    )
    headers = dict(exc.headers or {})
    if status == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(request, body, headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.router.routes):
        match, _ = route.matches({**request.scope, "method": ""})
        if match is not Match.NONE and route.methods:
            methods |= set(route.methods)
    return sorted(methods)


async def _provider_error(request: Request, exc: Exception) -> Response:
    # An upstream LLM/embedding vendor failed: 503 + Retry-After when it may come back, 502
    # when it answered something unusable. The message is ours and redacted (no key, no SDK
    # text); a refused key is an operator problem, so clients get no vendor detail for it.
    assert isinstance(exc, ProviderError)
    headers: dict[str, str] = {}
    if isinstance(exc, ProviderUnavailable):
        status, slug, title = 503, "provider-unavailable", "Provider Unavailable"
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after or 5)))
        detail = str(exc)
    elif isinstance(exc, AuthFailed):
        status, slug, title = 503, "provider-unavailable", "Provider Unavailable"
        headers["Retry-After"] = "60"
        detail = f"the {exc.provider or 'model'} provider refused Lorebase's credentials"
    else:
        status, slug, title = 502, "provider-error", "Bad Gateway"
        detail = str(exc)
    body = problem_body(
        status=status,
        type_=PROBLEM_BASE + slug,
        title=title,
        detail=detail,
        instance=request.url.path,
        extra={"provider": exc.provider} if exc.provider else None,
    )
    return problem_response(request, body, headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(ProviderError, _provider_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Unexpected exceptions are rendered by RequestContextMiddleware, inside the request's
    # context, so the opaque 500 still carries the request id.
