"""The AppError tree; one handler in `api.problems` renders each as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://lorebase.dev/problems/"


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


class Invalid(AppError):
    status, type, title = 422, "validation-error", "Validation Error"


class BadRequest(AppError):
    status, type, title = 400, "bad-request", "Bad Request"


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


class RateLimited(AppError):
    status, type, title = 429, "rate-limited", "Too Many Requests"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, **kwargs)


class ServiceUnavailable(AppError):
    status, type, title = 503, "service-unavailable", "Service Unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, **kwargs)


class ConfigurationError(Exception):
    """Settings that cannot work; raised at start with one line naming the variable."""
