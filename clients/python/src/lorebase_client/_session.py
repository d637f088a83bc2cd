"""What the sync and async clients share: credentials, the retry policy, SSE parsing."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from lorebase_client._calls import Call
from lorebase_client.errors import LorebaseError, TransportError, problem_error
from lorebase_client.models import QueryEvent, TokenPair

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({429, 503})


@dataclass
class Credentials:
    """An API key, or an access/refresh pair that the client renews on a 401."""

    api_key: str | None = None
    tokens: TokenPair | None = None

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        if self.tokens:
            return {"Authorization": f"Bearer {self.tokens.access_token}"}
        return {}

    @property
    def refreshable(self) -> bool:
        return self.api_key is None and self.tokens is not None


@dataclass
class RetryPolicy:
    """Retries 429 and 503 answers (and connection failures of idempotent requests), waiting
    what `Retry-After` says, capped, else an exponential backoff."""

    attempts: int = 3
    backoff: float = 0.5
    max_wait: float = 30.0
    statuses: frozenset[int] = field(default=RETRY_STATUSES)

    def wait(self, attempt: int, response: httpx.Response | None) -> float:
        header = response.headers.get("retry-after") if response is not None else None
        if header is not None:
            try:
                return float(min(self.max_wait, max(0.0, float(header))))
            except ValueError:
                pass
        return float(min(self.max_wait, self.backoff * 2**attempt))


def build_request(
    http: httpx.Client | httpx.AsyncClient, call: Call[Any], creds: Credentials
) -> httpx.Request:
    headers = dict(call.headers)
    if not call.anonymous:
        headers.update(creds.headers())
    return http.build_request(
        call.method,
        API_PREFIX + call.path,
        params=call.params,
        json=call.json,
        data=call.data,
        files=call.files,
        headers=headers,
    )


def check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise problem_error(response)


def transport_error(exc: httpx.TransportError) -> LorebaseError:
    return TransportError(status=0, title="Transport error", detail=f"{type(exc).__name__}: {exc}")


class EventParser:
    """Server-sent events (`event:` / `data:` lines, blank line ends one) into QueryEvents."""

    def __init__(self) -> None:
        self.event = "message"
        self.data: list[str] = []

    def feed(self, lines: Iterable[str]) -> list[QueryEvent]:
        out: list[QueryEvent] = []
        for line in lines:
            if not line:
                if self.data:
                    payload = json.loads("\n".join(self.data))
                    out.append(QueryEvent.model_validate({"event": self.event, "data": payload}))
                self.event, self.data = "message", []
            elif line.startswith("event:"):
                self.event = line[6:].strip()
            elif line.startswith("data:"):
                self.data.append(line[5:].lstrip())
        return out
