"""Problem details (RFC 9457) from the server as typed exceptions."""

from __future__ import annotations

from typing import Any

import httpx


class LorebaseError(Exception):
    """A problem the server answered with: status, title, detail, request id, Retry-After."""

    def __init__(
        self,
        *,
        status: int,
        title: str,
        detail: str,
        type: str = "about:blank",
        request_id: str | None = None,
        retry_after: float | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}" + (f" [{request_id}]" if request_id else ""))
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.request_id = request_id
        self.retry_after = retry_after
        self.errors = errors or []


class BadRequest(LorebaseError):
    """400"""


class Unauthorized(LorebaseError):
    """401: no, expired or revoked credentials."""


class Forbidden(LorebaseError):
    """403: a member whose role lacks the permission."""


class NotFound(LorebaseError):
    """404 (also another user's project: ids never leak)."""


class Conflict(LorebaseError):
    """409"""


class PayloadTooLarge(LorebaseError):
    """413"""


class UnsupportedMediaType(LorebaseError):
    """415"""


class ValidationFailed(LorebaseError):
    """422: `errors` names each field."""


class RateLimited(LorebaseError):
    """429: `retry_after` seconds."""


class ServiceUnavailable(LorebaseError):
    """503: a provider or the database is down; `retry_after` seconds."""


class ServerError(LorebaseError):
    """Any other 5xx."""


class TransportError(LorebaseError):
    """The server could not be reached, or the connection broke."""


_BY_STATUS: dict[int, type[LorebaseError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: RateLimited,
    503: ServiceUnavailable,
}


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def problem_error(response: httpx.Response) -> LorebaseError:
    """The exception for a 4xx/5xx answer, from its problem+json body when it has one."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else LorebaseError)
    return cls(
        status=status,
        title=str(body.get("title") or response.reason_phrase),
        detail=str(body.get("detail") or response.text[:500]),
        type=str(body.get("type") or "about:blank"),
        request_id=body.get("request_id") or response.headers.get("x-request-id"),
        retry_after=retry_after(response),
        errors=body.get("errors"),
    )


def problem_from_event(data: dict[str, Any]) -> LorebaseError:
    """The exception for a streamed `error` event (it carries the same problem fields)."""
    status = int(data.get("status", 500))
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else LorebaseError)
    return cls(
        status=status,
        title=str(data.get("title", "")),
        detail=str(data.get("detail", "")),
        type=str(data.get("type", "about:blank")),
        request_id=data.get("request_id"),
        retry_after=data.get("retry_after"),
    )
