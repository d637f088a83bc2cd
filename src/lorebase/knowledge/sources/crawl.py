"""Crawl a web site into documents (type `web`, one per page, source URL in metadata).

robots.txt is honoured (unless the request says otherwise), including Crawl-delay; pages come
from links up to `max_depth`, from sitemap.xml and from llms.txt; llms.txt and llms-full.txt
are indexed themselves when present. Only the start page's site is crawled (its host and
port, with or without `www.`). Each host gets a few concurrent requests spaced by a delay.
Every fetch goes through the SSRF guard; redirects are followed one hop at a time so each hop
is checked for scope, robots.txt and address. Pages with the same content are indexed once,
and re-crawling only re-indexes pages whose content changed: a re-crawl sends the validators
the last sync stored (`If-None-Match`, `If-Modified-Since`), and the report tells pages that
are gone (404/410) from fetches that failed for now, and whether the crawl saw every link.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpcore
import httpx

from lorebase.knowledge.extract.base import decode_text
from lorebase.knowledge.extract.limits import gunzip_capped
from lorebase.knowledge.sources.crawl_model import (
    GONE,
    CrawlError,
    CrawlOptions,
    CrawlReport,
    Fetched,
    HostGate,
    Known,
    Page,
    SkipUrl,
    describe_error,
    is_transient,
    page_of,
    unchanged_page,
)
from lorebase.knowledge.sources.links import normalize_url, site_of
from lorebase.knowledge.sources.netguard import BlockedAddress, guarded_client

log = logging.getLogger(__name__)

MAX_REDIRECTS = 5
MAX_SITEMAPS = 20
_SKIP_EXTENSIONS = re.compile(
    r"\.(png|jpe?g|gif|webp|svg|ico|bmp|tiff?|mp[34]|avi|mov|mkv|webm|wav|ogg|flac|zip|gz|tgz|"
    r"bz2|xz|7z|rar|tar|exe|dmg|msi|deb|rpm|apk|iso|woff2?|ttf|otf|eot|css|js|mjs|map|json|xml)$",
    re.IGNORECASE,
)
_LOC = re.compile(r"<loc>\s*([^<\s]+)\s*</loc>", re.IGNORECASE)


class Crawler:
    """`known` is what the last sync learnt of each page (a re-crawl): its validators make the
    requests conditional, and a page that answers 304 or fails for now is expanded through
    the links it had."""

    def __init__(
        self,
        options: CrawlOptions,
        client: httpx.AsyncClient | None = None,
        known: Mapping[str, Known] | None = None,
    ) -> None:
        self.options = options
        self.known: Mapping[str, Known] = known or {}
        self.client = client or guarded_client(
            allowed=options.allowed_networks,
            timeout=options.timeout_seconds,
            user_agent=options.user_agent,
        )
        self.site = site_of(options.start_url)
        self.robots: dict[str, RobotFileParser | None] = {}
        self.gates: dict[str, HostGate] = {}
        self.delay = options.delay_seconds
        self.report = CrawlReport()
        self.seen: set[str] = set()
        self.crawled: set[str] = set()
        self.hashes: dict[str, str] = {}

    # --- fetching ----------------------------------------------------------------------------

    def in_scope(self, url: str) -> bool:
        return site_of(url) == self.site

    def _gate(self, url: str) -> HostGate:
        host = urlsplit(url).netloc
        if host not in self.gates:
            self.gates[host] = HostGate(self.options.concurrency, self.delay)
        return self.gates[host]

    def _conditions(self, url: str) -> dict[str, str]:
        known = self.known.get(url)
        headers: dict[str, str] = {}
        if known is not None and known.etag:
            headers["If-None-Match"] = known.etag
        if known is not None and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        return headers

    async def _get(self, url: str) -> Fetched:
        """One request (conditional when the last sync left validators), body capped at
        `max_bytes`; network errors propagate."""
        headers = self._conditions(url)
        async with self._gate(url), self.client.stream("GET", url, headers=headers) as response:
            content_type = response.headers.get("content-type", "")
            charset = re.search(r"charset=([\w-]+)", content_type, re.IGNORECASE)
            fetched = Fetched(
                url=url,
                status=response.status_code,
                content_type=content_type.split(";")[0].strip().lower(),
                body=b"",
                charset=charset.group(1) if charset else None,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )
            if response.status_code in (301, 302, 303, 307, 308):
                fetched.url = response.headers.get("location", "")
            elif response.status_code == 200:
                body = bytearray()
                async for piece in response.aiter_bytes():
                    body.extend(piece)
                    if len(body) > self.options.max_bytes:
                        raise SkipUrl(f"larger than {self.options.max_bytes} bytes")
                fetched.body = bytes(body)
            return fetched

    async def fetch(self, url: str, *, check_robots: bool = True) -> Fetched:
        """GET following redirects hop by hop within the site; raises `SkipUrl` or network
        errors. The returned `url` is the final one."""
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            if not self.in_scope(current):
                raise SkipUrl(f"redirects outside the site to {current}")
            if check_robots and not await self.allowed_by_robots(current):
                raise SkipUrl("disallowed by robots.txt")
            fetched = await self._get(current)
            if fetched.status in (301, 302, 303, 307, 308):
                target = normalize_url(fetched.url, current) if fetched.url else None
                if target is None:
                    raise SkipUrl(f"redirect ({fetched.status}) without a usable Location")
                current = target
                continue
            fetched.url = current
            return fetched
        raise SkipUrl(f"more than {MAX_REDIRECTS} redirects")

    async def allowed_by_robots(self, url: str) -> bool:
        if not self.options.respect_robots_txt:
            return True
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self.robots:
            self.robots[origin] = await self._load_robots(origin)
        parser = self.robots[origin]
        return True if parser is None else parser.can_fetch(self.options.user_agent, url)

    async def _load_robots(self, origin: str) -> RobotFileParser | None:
        try:
            fetched = await self.fetch(origin + "/robots.txt", check_robots=False)
        except SkipUrl:
            return None
        except (httpx.HTTPError, httpcore.ConnectError, BlockedAddress, OSError) as exc:
            raise CrawlError(
                f"robots.txt of {origin} could not be fetched: {describe_error(exc)}"
            ) from None
        if fetched.status >= 500:
            # RFC 9309: an unreachable robots.txt means "disallow everything".
            raise CrawlError(
                f"robots.txt of {origin} answered {fetched.status}; the site asks not to be "
                "crawled right now (pass respect_robots_txt=false to override)"
            )
        if fetched.status != 200:
            return None  # no robots.txt: everything is allowed
        parser = RobotFileParser()
        parser.parse((decode_text(fetched.body) or "").splitlines())
        delay = parser.crawl_delay(self.options.user_agent)
        if delay is not None:
            self.delay = max(self.delay, min(float(delay), 30.0))
            for gate in self.gates.values():
                gate.delay = self.delay
        return parser

    # --- discovery -----------------------------------------------------------------------

    async def sitemap_urls(self, origin: str) -> list[str]:
        candidates: list[str] = []
        parser = self.robots.get(origin)
        if parser is not None:
            candidates.extend(parser.site_maps() or [])
        candidates.append(origin + "/sitemap.xml")
        found: list[str] = []
        visited: set[str] = set()
        while candidates and len(visited) < MAX_SITEMAPS:
            sitemap = normalize_url(candidates.pop(0))
            if sitemap is None or sitemap in visited or not self.in_scope(sitemap):
                continue
            visited.add(sitemap)
            try:
                fetched = await self.fetch(sitemap)
            except (SkipUrl, BlockedAddress):
                continue
            except (httpx.HTTPError, httpcore.ConnectError, OSError):
                fetched = Fetched(url=sitemap, status=503, content_type="", body=b"", charset=None)
            if is_transient(fetched.status):
                self.report.failed.add(sitemap)  # the pages it lists are unknown this time
            if fetched.status != 200:
                continue
            body = fetched.body
            if body[:2] == b"\x1f\x8b":
                # Streamed with an output cap: a 1 MB gzip can hold a 1 GB sitemap.
                unpacked = gunzip_capped(body, max_bytes=self.options.max_bytes)
                if unpacked is None:
                    continue
                body = unpacked
            xml = decode_text(body) or ""
            locations = _LOC.findall(xml)
            if "<sitemapindex" in xml[:2000].lower():
                candidates.extend(locations)
            else:
                found.extend(locations)
        return found

    # --- crawling ------------------------------------------------------------------------

    async def crawl(
        self,
        on_page: Callable[[Page], Awaitable[None]],
        on_progress: Callable[[int, int], Awaitable[None]] | None = None,
    ) -> CrawlReport:
        """Crawl breadth-first; `on_page` is awaited for each new page (in crawl order)."""
        options = self.options
        start = normalize_url(options.start_url)
        if start is None:
            raise CrawlError("the start URL must be an absolute http(s) URL")
        queue = await self._seed(start)
        done = 0
        start_failure: str | None = None
        fatal: BaseException | None = None

        async def worker() -> None:
            nonlocal done, start_failure, fatal
            while True:
                url, depth = await queue.get()
                try:
                    if fatal is not None:
                        continue
                    if len(self.report.pages) >= options.max_pages:
                        self.report.skipped.setdefault(url, "max_pages reached")
                        self.report.truncated = True
                        continue
                    try:
                        failure = await self._visit(url, depth, queue, on_page)
                    except Exception as exc:  # indexing failed: stop the crawl, report it
                        fatal = exc
                        continue
                    if failure and url == start:
                        start_failure = failure
                    done += 1
                    if on_progress is not None:
                        total = max(done, min(options.max_pages, done + queue.qsize()))
                        await on_progress(done, total)
                finally:
                    queue.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(options.concurrency)]
        try:
            await queue.join()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await self.client.aclose()
        if fatal is not None:
            raise fatal
        if not self.report.pages and start_failure:
            raise CrawlError(f"the start page could not be crawled: {start_failure}")
        return self.report

    async def _seed(self, start: str) -> asyncio.Queue[tuple[str, int]]:
        """The queue to crawl: the start page, then what sitemap.xml and llms.txt list."""
        parts = urlsplit(start)
        queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self.seen.add(start)
        queue.put_nowait((start, 0))
        if not await self.allowed_by_robots(start):
            raise CrawlError("robots.txt disallows the start page")
        if self.options.discover and self.options.max_depth > 0:
            for extra in await self._discover(f"{parts.scheme}://{parts.netloc}"):
                if extra not in self.seen:
                    self.seen.add(extra)
                    queue.put_nowait((extra, 1))
        return queue

    async def _discover(self, origin: str) -> list[str]:
        urls: list[str] = []
        for name in ("llms.txt", "llms-full.txt"):
            candidate = f"{origin}/{name}"
            if candidate not in self.seen:
                urls.append(candidate)
        for url in await self.sitemap_urls(origin):
            normalized = normalize_url(url)
            if normalized and self.in_scope(normalized):
                urls.append(normalized)
        return list(dict.fromkeys(urls))

    async def _visit(
        self,
        url: str,
        depth: int,
        queue: asyncio.Queue[tuple[str, int]],
        on_page: Callable[[Page], Awaitable[None]],
    ) -> str | None:
        """Fetch, index and expand one URL; returns why it failed, if it did."""
        quiet = url.endswith(("/llms.txt", "/llms-full.txt")) and depth == 1  # optional files
        try:
            fetched = await self.fetch(url)
            if fetched.status not in (200, 304):
                message = f"HTTP {fetched.status}"
                return self._failed(fetched.url, depth, queue, message, fetched.status, quiet)
            if fetched.url != url:
                if fetched.url in self.crawled:
                    self.report.duplicates[url] = fetched.url
                    return None
                self.seen.add(fetched.url)
            # HTML parsing is CPU work: keep it off the event loop.
            page, links = await asyncio.to_thread(self._page, fetched, depth)
        except SkipUrl as skip:
            if not quiet:
                self.report.skipped[url] = str(skip)
            return str(skip)
        except BlockedAddress as exc:
            self.report.errors[url] = f"blocked: {exc}"
            return f"blocked: {exc}"
        except (httpx.HTTPError, httpcore.ConnectError, OSError) as exc:
            return self._failed(url, depth, queue, describe_error(exc), None, quiet)
        if page.content_hash and page.content_hash in self.hashes:
            self.report.duplicates[page.url] = self.hashes[page.content_hash]
            return None
        if len(self.report.pages) >= self.options.max_pages:
            self.report.skipped[url] = "max_pages reached"
            self.report.truncated = True
            return None
        self.hashes[page.content_hash] = page.url
        self.crawled.add(page.url)
        self.report.pages.append(page.url)
        await on_page(page)
        self._expand(links, depth, queue)
        return None

    def _page(self, fetched: Fetched, depth: int) -> tuple[Page, list[str]]:
        """A 200 is read; a 304 is the page the last sync stored, with the links it had."""
        if fetched.status != 304:
            return page_of(fetched, depth)
        return unchanged_page(fetched, depth, self.known.get(fetched.url))

    def _failed(
        self,
        url: str,
        depth: int,
        queue: asyncio.Queue[tuple[str, int]],
        message: str,
        status: int | None,
        quiet: bool,
    ) -> str:
        """Record a fetch that failed: 404/410 says the page is gone; a timeout, 5xx or
        connection error says nothing, so the links the page had are still followed."""
        if status in GONE:
            self.report.gone.add(url)
        elif status is None or is_transient(status):
            self.report.failed.add(url)
            known = self.known.get(url)
            if known is not None:
                self._expand(list(known.links), depth, queue)
        if not quiet:
            self.report.errors[url] = message
        return message

    def _expand(self, links: list[str], depth: int, queue: asyncio.Queue[tuple[str, int]]) -> None:
        if depth >= self.options.max_depth:
            return
        for link in links:
            if link in self.seen or not self.in_scope(link):
                continue
            if _SKIP_EXTENSIONS.search(urlsplit(link).path):
                continue
            self.seen.add(link)
            queue.put_nowait((link, depth + 1))
