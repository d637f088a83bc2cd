"""Error responses in the OpenAPI document: every operation answers RFC 9457 problems."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from lorebase.api.problems import PROBLEM_JSON

_ANONYMOUS = ("/auth/register", "/auth/token", "/auth/refresh", "/health", "/metrics")
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "instance"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
_COMMON = {
    "400": "The body could not be parsed (not JSON, not a form, a broken multipart).",
    "413": "The body is larger than the route's limit (see README, Limits).",
    "422": "The request is invalid; `errors` names each field.",
    "429": "Rate limited; retry after `Retry-After` seconds.",
    "500": "Unexpected error; quote `request_id`.",
}


_BAD_LOGIN = "Wrong username or password, or a refresh token that is spent or expired."
_CONFLICT = "Conflicts with the current state (a taken name, a dependency, a limit)."


def _problem(description: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Problem"}
    return {"description": description, "content": {PROBLEM_JSON: {"schema": ref}}}


# `/openai/v1` answers errors in OpenAI's shape (api.problems.render_problem); a 422 is a 400.
_OPENAI_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
_OPENAI_ERRORS = {
    "400": "Malformed or invalid request (OpenAI's error shape; `param` names the field).",
    "401": "No valid credential (`Authorization: Bearer <API key>`).",
    "403": "The credential may not do this.",
    "404": "Unknown model (project), or not visible to the caller.",
    "413": "The body is larger than the route's limit.",
    "429": "Rate limited; retry after `Retry-After` seconds.",
    "500": "Unexpected error.",
    "502": "The chat model answered something unusable.",
    "503": "The chat model is unavailable; retry after `Retry-After` seconds.",
}


def _document_openai(operations: dict[str, Any]) -> None:
    ref = {"$ref": "#/components/schemas/OpenAIError"}
    for operation in operations.values():
        responses = operation.setdefault("responses", {})
        responses.pop("422", None)
        for status, description in _OPENAI_ERRORS.items():
            content = {"application/json": {"schema": ref}}
            responses[status] = {"description": description, "content": content}


def _document(schema: dict[str, Any]) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = _PROBLEM_SCHEMA
    components["OpenAIError"] = _OPENAI_ERROR_SCHEMA
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/openai/"):
            _document_openai(operations)
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in _COMMON.items():
                existing = responses.get(status, {}).get("description", description)
                responses[status] = _problem(existing)
            if method.upper() in ("POST", "PUT", "DELETE"):
                existing = responses.get("409", {}).get("description", _CONFLICT)
                responses["409"] = _problem(existing)
            if path.endswith(("/auth/token", "/auth/refresh")):
                existing = responses.get("401", {}).get("description", _BAD_LOGIN)
                responses["401"] = _problem(existing)
            if not path.endswith(_ANONYMOUS):
                for status, description in (
                    ("401", "No valid credential."),
                    ("404", "Not found, or not visible to the caller."),
                ):
                    existing = responses.get(status, {}).get("description", description)
                    responses[status] = _problem(existing)
            for status, response in responses.items():
                if status[0] in "45" and "content" not in response:
                    responses[status] = _problem(response.get("description", "Error"))
    return schema


def install_problem_docs(app: FastAPI) -> None:
    """Wrap `app.openapi` so the generated document lists problem responses."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
