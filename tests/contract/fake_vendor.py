"""A loopback HTTP server that plays a vendor: each test scripts the replies (JSON, SSE or
NDJSON streams, error bodies, Retry-After, slow answers, connections dropped mid-stream) and
reads back every request it received (method, path, headers, JSON body)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer. `sse` items are written as `data: <json>` events (a str is sent
    verbatim as one event block), `ndjson` items one JSON object per line."""

    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    sse: list[Any] | None = None
    ndjson: list[Any] | None = None
    delay: float = 0.0
    # Close the connection after this many stream items, with no terminator (a vendor dying).
    drop_after: int | None = None


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeVendor:
    """Replies are taken per path from the scripted queue, else from `default(path, body)`."""

    def __init__(self, default: Callable[[str, Any], Reply] | None = None) -> None:
        self.requests: list[Recorded] = []
        self._scripts: dict[str, deque[Reply]] = {}
        self.default = default
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(replies)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, path: str, body: Any) -> Reply:
        with self._lock:
            queue = self._scripts.get(path)
            if queue:
                return queue.popleft()
        if self.default is not None:
            return self.default(path, body)
        return Reply(404, {"error": {"message": f"no reply scripted for {path}"}})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            # Streams use chunked transfer encoding, as the vendors' do: a connection closed
            # before the last chunk is a broken answer, not a short one.
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                path = self.path.split("?", 1)[0]
                headers = {k.lower(): v for k, v in self.headers.items()}
                vendor.requests.append(Recorded("POST", path, headers, body))
                self._reply(vendor._next(path, body))

            def _reply(self, reply: Reply) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    self.send_header("Connection", "close")
                    self.close_connection = True
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    if reply.sse is not None:
                        self._stream("text/event-stream", self._sse(reply.sse), reply)
                    elif reply.ndjson is not None:
                        lines = (json.dumps(item) + "\n" for item in reply.ndjson)
                        self._stream("application/x-ndjson", lines, reply)
                    else:
                        data = json.dumps(reply.json).encode()
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            @staticmethod
            def _sse(items: list[Any]) -> Iterator[str]:
                for item in items:
                    yield item if isinstance(item, str) else f"data: {json.dumps(item)}\n\n"

            def _stream(self, content_type: str, chunks: Iterator[str], reply: Reply) -> None:
                self.send_header("Content-Type", content_type)
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for index, chunk in enumerate(chunks):
                    if reply.drop_after is not None and index >= reply.drop_after:
                        # No terminating chunk, and RST: a vendor process that died mid-answer.
                        self.wfile.flush()
                        self.connection.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                        return
                    data = chunk.encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

        return Handler
