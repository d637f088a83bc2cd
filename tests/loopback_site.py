"""A small web site on 127.0.0.1 for crawler tests: pages, redirects, slow answers, 404s, and
conditional requests (a route with an `etag` or `last_modified` answers 304 when the request's
validator matches)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Route:
    body: str | bytes = ""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    etag: str | None = None
    last_modified: str | None = None

    def validators(self) -> dict[str, str]:
        found = {"ETag": self.etag, "Last-Modified": self.last_modified}
        return {name: value for name, value in found.items() if value}


class LoopbackSite:
    """Routes by path; `{base}` in a body is replaced by the site's base URL."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.hits: list[str] = []
        self.not_modified: list[str] = []  # paths answered 304
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def page(self, path: str, html_body: str, *, title: str | None = None) -> None:
        head = f"<title>{title}</title>" if title else ""
        self.routes[path] = Route(f"<html><head>{head}</head><body>{html_body}</body></html>")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with site._lock:
                    site.hits.append(self.path)
                route = site.routes.get(self.path.split("?")[0]) or Route("not found", 404)
                if route.delay:
                    time.sleep(route.delay)
                if route.status == 200 and self._unchanged(route):
                    with site._lock:
                        site.not_modified.append(self.path)
                    self.send_response(304)
                    for name, value in route.validators().items():
                        self.send_header(name, value)
                    self.end_headers()
                    return
                body = route.body
                if isinstance(body, str):
                    body = body.replace("{base}", site.base).encode()
                try:
                    self.send_response(route.status)
                    self.send_header("Content-Type", route.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in {**route.validators(), **route.headers}.items():
                        self.send_header(name, value.replace("{base}", site.base))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _unchanged(self, route: Route) -> bool:
                etag = self.headers.get("If-None-Match")
                if route.etag and etag is not None:
                    return etag == route.etag
                since = self.headers.get("If-Modified-Since")
                return bool(route.last_modified and since == route.last_modified)

        return Handler
