"""Every error a client can see, and ONE mapping from an exception to its problem.

`problem_from(exc)` turns an `AppError`, a `ProviderError` (an upstream model vendor failed) or
a pydantic `ValidationError` into a `Problem`: status, type, title, detail and headers
(`Retry-After`). REST (`api.problems`), MCP (`mcp.problems`) and the SSE `error` event all
render that one `Problem` with `Problem.body`, so a failure has one status on every transport.
Anything else is an opaque 500 that carries no exception text."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from lorebase.logs import request_id_var

PROBLEM_BASE = "https://lorebase.dev/problems/"
OPAQUE_DETAIL = "An unexpected error occurred; quote the request id when reporting it."


class AppError(Exception):
    """A failure with an HTTP meaning: status, a stable type slug and a human title."""

    status: int = 500
    type: str = "internal-error"
    title: str = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.type


class BadRequest(AppError):
    status, type, title = 400, "bad-request", "Bad Request"


class Invalid(AppError):
    status, type, title = 422, "validation-error", "Validation Error"


class Unauthorized(AppError):
    status, type, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class Forbidden(AppError):
    status, type, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, type, title = 404, "not-found", "Not Found"


class Conflict(AppError):
    status, type, title = 409, "conflict", "Conflict"


class PayloadTooLarge(AppError):
    status, type, title = 413, "payload-too-large", "Payload Too Large"


class UnsupportedMediaType(AppError):
    status, type, title = 415, "unsupported-media-type", "Unsupported Media Type"


class _ComeBackLater(AppError):
    """An error that tells the client when to retry (`Retry-After`, whole seconds, >= 1)."""

    default_retry_after = 1

    def __init__(
        self, detail: str | None = None, *, retry_after: int | None = None, **kwargs: Any
    ) -> None:
        seconds = self.default_retry_after if retry_after is None else retry_after
        kwargs.setdefault("headers", {"Retry-After": str(max(1, seconds))})
        super().__init__(detail, **kwargs)


class RateLimited(_ComeBackLater):
    status, type, title = 429, "rate-limited", "Too Many Requests"


class ServiceUnavailable(_ComeBackLater):
    status, type, title = 503, "service-unavailable", "Service Unavailable"
    default_retry_after = 5


class ConfigurationError(Exception):
    """Settings that cannot work; raised at start with one line naming the variable."""


# --- upstream vendors (re-exported by `providers.base`, where vendor modules import them) ---


class ProviderError(Exception):
    """A provider failed; vendor modules map SDK errors onto the subclasses.

    The message is ours (vendor, status, a redacted vendor message): never the SDK exception,
    whose text or attached request may carry the key."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        retry_after: float | None = None,
        status: int | None = None,
    ):
        super().__init__(message)
        self.provider = provider
        self.retry_after = retry_after
        self.status = status


class ProviderUnavailable(ProviderError):
    """Unreachable, timed out or 5xx: worth retrying later or falling back."""


class ProviderRateLimited(ProviderUnavailable):
    """429 from the vendor; `retry_after` says when to come back."""


class AuthFailed(ProviderError):
    """The key was refused (401/403): retrying will not help."""


class BadResponse(ProviderError):
    """The vendor answered something we cannot use (400, malformed body)."""


# --- the one mapping --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """What a client is told about a failure, whatever the transport (RFC 9457 fields)."""

    status: int
    type: str
    title: str
    detail: str
    headers: Mapping[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.type

    @property
    def retry_after(self) -> int | None:
        value = self.headers.get("Retry-After")
        return int(value) if value is not None and value.isdigit() else None

    def body(self, *, instance: str | None = None) -> dict[str, Any]:
        """The problem+json members; `retry_after` mirrors the header for transports (MCP,
        an SSE event) whose client never sees HTTP headers."""
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance is not None:
            body["instance"] = instance
        body["request_id"] = request_id_var.get()
        if self.errors is not None:
            body["errors"] = self.errors
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        body.update(self.extra)
        return body


OPAQUE = Problem(500, "internal-error", "Internal Server Error", OPAQUE_DETAIL)


def _provider_problem(exc: ProviderError) -> Problem:
    # 503 + Retry-After when the vendor may come back, 502 when it answered something
    # unusable. The message is ours and redacted; a refused key is an operator problem, so
    # clients get no vendor detail for it.
    extra = {"provider": exc.provider} if exc.provider else {}
    if isinstance(exc, ProviderUnavailable | AuthFailed):
        if isinstance(exc, AuthFailed):
            detail, retry = (
                f"the {exc.provider or 'model'} provider refused Lorebase's credentials",
                60,
            )
        else:
            detail, retry = str(exc), max(1, math.ceil(exc.retry_after or 5))
        headers = {"Retry-After": str(retry)}
        return Problem(
            503, "provider-unavailable", "Provider Unavailable", detail, headers, None, extra
        )
    return Problem(502, "provider-error", "Bad Gateway", str(exc), {}, None, extra)


def problem_from(exc: BaseException) -> Problem:
    """The one problem for `exc`: ours as declared, vendors' by the table above, validation
    as a 422 naming the fields, anything else an opaque 500."""
    if isinstance(exc, AppError):
        return Problem(
            exc.status, exc.type, exc.title, exc.detail, dict(exc.headers), exc.errors, exc.extra
        )
    if isinstance(exc, ProviderError):
        return _provider_problem(exc)
    if isinstance(exc, ValidationError):
        return problem_from(invalid_from(exc.errors(), what="arguments"))
    return OPAQUE


def is_expected(exc: BaseException) -> bool:
    """True when `problem_from` knows `exc`; anything else is a bug worth a traceback."""
    return isinstance(exc, AppError | ProviderError | ValidationError)


_LOCATIONS = ("body", "query", "path")


def invalid_from(errors: Iterable[Mapping[str, Any]], *, what: str = "request") -> Invalid:
    """A 422 naming the offending fields, from pydantic's (or FastAPI's) error list."""
    cleaned: list[dict[str, Any]] = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        cleaned.append(
            {
                "loc": loc,
                "field": ".".join(part for part in loc if part not in _LOCATIONS),
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    fields = ", ".join(sorted({e["field"] or ".".join(e["loc"]) for e in cleaned} - {""}))
    return Invalid(f"invalid {what}: {fields}" if fields else f"invalid {what}", errors=cleaned)
