"""Problem details (RFC 9457 fields) for MCP: tool errors and the HTTP 401, rendered from the
one mapping `lorebase.errors.problem_from`, so a tool error carries the status REST answers."""

from __future__ import annotations

from typing import Any

from lorebase.errors import problem_from


def tool_problem(exc: BaseException, *, instance: str) -> dict[str, Any]:
    """The problem body for a failed tool call (`isError: true`); HTTP headers do not reach an
    MCP client, so a `Retry-After` (429, 503) travels in the body as `retry_after` seconds."""
    return problem_from(exc).body(instance=instance)
