"""Problem details (RFC 9457 fields) for MCP: tool errors and the HTTP 401."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from lorebase.errors import AppError, Invalid
from lorebase.logs import request_id_var


def problem_body(exc: AppError, *, instance: str) -> dict[str, Any]:
    """The same fields the REST handler renders for `exc`."""
    body: dict[str, Any] = {
        "type": exc.type_uri,
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "instance": instance,
        "request_id": request_id_var.get(),
    }
    if exc.errors is not None:
        body["errors"] = exc.errors
    if exc.extra:
        body.update(exc.extra)
    return body


def tool_problem(exc: AppError, *, instance: str) -> dict[str, Any]:
    """`problem_body` for a tool error; HTTP headers do not reach an MCP client, so a
    `Retry-After` (429, 503) travels in the body as `retry_after` seconds."""
    body = problem_body(exc, instance=instance)
    retry_after = exc.headers.get("Retry-After")
    if retry_after is not None and retry_after.isdigit():
        body["retry_after"] = int(retry_after)
    return body


def invalid_from(exc: ValidationError) -> Invalid:
    """A 422 naming the fields, like the REST validation handler."""
    errors: list[dict[str, Any]] = []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        errors.append(
            {
                "loc": loc,
                "field": ".".join(loc),
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    fields = ", ".join(sorted({str(e["field"]) for e in errors if e["field"]}))
    return Invalid(f"invalid arguments: {fields}" if fields else "invalid arguments", errors=errors)
