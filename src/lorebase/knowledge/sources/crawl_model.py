"""What a crawl is asked, what it returns, and the small parts its fetches share: the crawl
options, what the last sync knew of a page, a page, the report, the per-host gate, a fetched
response and how it becomes a page."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

from lorebase.content import sha256
from lorebase.knowledge.extract.base import decode_text
from lorebase.knowledge.extract.html import html_to_markdown
from lorebase.knowledge.sources.links import html_links, markdown_links
from lorebase.knowledge.sources.netguard import IPNetwork

GONE = (404, 410)  # the page is gone (a miss); anything else that fails is not evidence
_CONTENT_TYPES = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/pdf": "pdf",
}


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


@dataclass(frozen=True, slots=True)
class Known:
    """What the last sync learnt of a page: the validators for a conditional request, the
    content hash, and the links it had (followed again when the page answers 304)."""

    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    links: tuple[str, ...] = ()


@dataclass(slots=True)
class Page:
    url: str  # final URL after redirects, normalized
    format: str  # html pages arrive here as markdown; pdf keeps its bytes
    text: str | None
    data: bytes | None
    title: str | None
    content_hash: str
    depth: int
    status: int  # 304: not modified since the last sync (no text, no data)
    content_type: str
    etag: str | None = None
    last_modified: str | None = None
    links: list[str] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass
class CrawlReport:
    pages: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # answered 404/410
    failed: set[str] = field(default_factory=set)  # timeout, 5xx, 429, connection error
    truncated: bool = False  # max_pages cut the crawl short: its link graph is partial

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
    etag: str | None = None
    last_modified: str | None = None


class SkipUrl(Exception):
    """This URL is not crawled (out of scope, robots.txt, content type...): not an error."""


def is_transient(status: int) -> bool:
    """A status that says nothing about whether the page still exists."""
    return status >= 500 or status in (408, 425, 429)


def page_of(fetched: Fetched, depth: int) -> tuple[Page, list[str]]:
    """The page a 200 response holds, and its links (blocking: HTML parsing is CPU work)."""
    kind = _CONTENT_TYPES.get(fetched.content_type)
    if kind is None and fetched.url.endswith((".md", ".txt")):
        kind = "markdown" if fetched.url.endswith(".md") else "text"
    if kind is None:
        raise SkipUrl(f"unsupported content type {fetched.content_type or 'unknown'}")
    text: str | None = None
    title: str | None = None
    links: list[str] = []
    fmt = kind
    if kind != "pdf":
        text = decode_body(fetched.body, fetched.charset)
        if text is None:
            raise SkipUrl("the body is not text")
        if kind == "html":
            links = html_links(text, fetched.url)
            text, title = html_to_markdown(text)
            fmt = "markdown"
        else:
            links = markdown_links(text, fetched.url)
        if not text.strip():
            raise SkipUrl("no text content")
    page = Page(
        url=fetched.url,
        format=fmt,
        text=text,
        data=fetched.body if kind == "pdf" else None,
        title=title,
        content_hash=sha256(fetched.body) if text is None else sha256(text),
        depth=depth,
        status=fetched.status,
        content_type=fetched.content_type,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        links=links,
    )
    return page, links


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


def unchanged_page(fetched: Fetched, depth: int, known: Known | None) -> tuple[Page, list[str]]:
    """A 304: the page the last sync stored (no body), expanded through the links it had."""
    if known is None or not known.content_hash:
        raise SkipUrl("304 Not Modified for a page this crawl has no copy of")
    page = Page(
        url=fetched.url,
        format="",
        text=None,
        data=None,
        title=None,
        content_hash=known.content_hash,
        depth=depth,
        status=304,
        content_type=fetched.content_type,
        etag=fetched.etag or known.etag,
        last_modified=fetched.last_modified or known.last_modified,
        links=list(known.links),
    )
    return page, list(known.links)
