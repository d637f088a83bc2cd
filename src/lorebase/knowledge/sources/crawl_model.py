"""What a crawl is asked, what it returns, and the small parts its fetches share: the crawl
options, a page, the report, the per-host gate and a fetched response."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from lorebase.knowledge.extract.base import decode_text
from lorebase.knowledge.sources.netguard import IPNetwork


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    start_url: str
    max_depth: int = 0
    max_pages: int = 100
    respect_robots_txt: bool = True
    discover: bool = True
    delay_seconds: float = 0.25
    concurrency: int = 4
    timeout_seconds: float = 15.0
    max_bytes: int = 25 * 1024 * 1024
    user_agent: str = "LorebaseBot/0.1"
    allowed_networks: tuple[IPNetwork, ...] = ()


@dataclass(slots=True)
class Page:
    url: str  # final URL after redirects, normalized
    format: str  # html pages arrive here as markdown; pdf keeps its bytes
    text: str | None
    data: bytes | None
    title: str | None
    content_hash: str
    depth: int
    status: int
    content_type: str


@dataclass
class CrawlReport:
    pages: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)

    def summary(self, limit: int = 50) -> dict[str, Any]:
        def head(items: dict[str, str]) -> dict[str, str]:
            return dict(list(items.items())[:limit])

        return {
            "pages": len(self.pages),
            "skipped": head(self.skipped),
            "errors": head(self.errors),
            "duplicates": head(self.duplicates),
        }


class CrawlError(Exception):
    """The crawl cannot start (start page unreachable, blocked, or robots.txt says no)."""


class HostGate:
    """At most `concurrency` requests to one host, started at least `delay` apart."""

    def __init__(self, concurrency: int, delay: float) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.delay = delay
        self.lock = asyncio.Lock()
        self.next_start = 0.0

    async def __aenter__(self) -> None:
        await self.semaphore.acquire()
        async with self.lock:
            wait = self.next_start - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self.next_start = time.monotonic() + self.delay

    async def __aexit__(self, *exc: object) -> None:
        self.semaphore.release()


@dataclass
class Fetched:
    url: str
    status: int
    content_type: str
    body: bytes
    charset: str | None


def decode_body(body: bytes, charset: str | None) -> str | None:
    if charset:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return decode_text(body)


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException | httpcore.TimeoutException):
        return "timed out"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
