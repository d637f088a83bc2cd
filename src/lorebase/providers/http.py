"""A thin JSON-over-HTTP client for the hot provider calls (query and chunk embeddings).

The vendor SDKs are kept for chat, where a call costs seconds anyway. An embeddings call is
on every search's path, and its client is most of a search's Python time: measured against
the bench's fake endpoint, 1.4 ms CPU per call through the openai SDK, 1.0 ms through httpx,
0.3 ms through aiohttp (its C HTTP parser, a keep-alive pool). The wire protocol is the
vendor's; this module only posts JSON and hands back the status, headers and body."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from lorebase.providers.resilience import RetryPolicy
from lorebase.providers.vendor import HttpFailure, vendor_message


@dataclass(frozen=True)
class HttpReply:
    """What came back: the status, the headers and the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class HttpStatusError(Exception):
    """A reply with an error status (the reply kept for `classify`)."""

    def __init__(self, reply: HttpReply) -> None:
        super().__init__(f"HTTP {reply.status}")
        self.reply = reply


class JsonClient:
    """POSTs JSON to `base_url` + path with fixed headers over a keep-alive pool.

    The aiohttp session belongs to an event loop, so it is made on first use in the running
    loop (and made again if a later call runs in another one, as tests do)."""

    def __init__(
        self, *, base_url: str, headers: Mapping[str, str], policy: RetryPolicy, pool: int = 32
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Content-Type": "application/json", **headers}
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=policy.connect_timeout, sock_read=policy.read_timeout
        )
        self._pool = pool
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_now(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            if self._session is not None:
                _abandon(self._session)
            connector = aiohttp.TCPConnector(limit=self._pool, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=self._timeout,
            )
            self._loop = loop
            _SESSIONS[self._session] = loop
        return self._session

    async def post_json(self, path: str, payload: Mapping[str, Any]) -> HttpReply:
        """The reply to one POST; an error status raises HttpStatusError (with the reply)."""
        session = self._session_now()
        async with session.post(self.base_url + path, data=orjson.dumps(payload)) as response:
            reply = HttpReply(response.status, dict(response.headers), await response.read())
        if reply.status >= 400:
            raise HttpStatusError(reply)
        return reply

    async def aclose(self) -> None:
        """Close the pool if it belongs to the running loop (another loop's is gone with it)."""
        session, self._session = self._session, None
        if session is not None:
            await _close(session)


async def _close(session: aiohttp.ClientSession) -> None:
    loop = _SESSIONS.pop(session, None)
    if session.closed:
        return
    if loop is asyncio.get_running_loop():
        await session.close()
    else:
        _abandon(session)


def _abandon(session: aiohttp.ClientSession) -> None:
    """Drop a pool made in another (ended) event loop: its sockets are closed without awaiting
    that loop, and neither object warns when collected."""
    _SESSIONS.pop(session, None)
    connector = session.connector
    session.detach()
    if connector is not None:
        # Private, because the public close() schedules its work on the connector's (ended)
        # loop; _close() shuts the sockets at once.
        with contextlib.suppress(Exception):
            connector._close()


# Every open pool and its loop, so that whoever owns the event loop (the app's context, a
# test) closes the pools made in it before the loop ends, even those of clients already
# collected: an aiohttp session left open warns when collected.
_SESSIONS: dict[aiohttp.ClientSession, asyncio.AbstractEventLoop] = {}


async def close_clients() -> None:
    """Close every open pool (a client makes a new one on its next call)."""
    for session in list(_SESSIONS):
        await _close(session)


def classify(exc: Exception) -> HttpFailure:
    """What a JsonClient exception says about the HTTP exchange."""
    if isinstance(exc, HttpStatusError):
        reply = exc.reply
        try:
            body: object = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            body = reply.body.decode("utf-8", "replace")
        return HttpFailure("status", reply.status, vendor_message(body), reply.headers)
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return HttpFailure("timeout")
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.InvalidURL | OSError):
        return HttpFailure("unreachable")
    if isinstance(exc, aiohttp.ClientError):
        return HttpFailure("unreadable")
    return HttpFailure("other")
