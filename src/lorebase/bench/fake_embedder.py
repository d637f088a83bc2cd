"""An OpenAI-compatible `/v1/embeddings` endpoint that costs (almost) nothing, for measuring
Lorebase itself: a raw asyncio HTTP/1.1 server (keep-alive, no framework) answering with
deterministic unit vectors derived from a hash of each input text.

Each text's vector is made and serialised once and kept (an LRU of pre-serialised JSON
arrays), so a response is assembled by joining bytes. It runs in its own process
(`FakeEmbedder`), outside the server's process tree, so its CPU is not counted as Lorebase's.

    python -m lorebase.bench.fake_embedder --port 8001 --dim 1536
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import socket
import subprocess
import sys
import time
from collections import OrderedDict
from typing import Any

import httpx
import numpy as np
import orjson

DIMENSION = 1536
MODEL = "text-embedding-3-small"
_KEEP = 200_000  # serialised vectors kept (~15 KB each at 1536-d)


class Vectors:
    """Unit vectors from text hashes, serialised once (`json`) and kept in an LRU."""

    def __init__(self, dim: int, keep: int = _KEEP) -> None:
        self.dim = dim
        self.keep = keep
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()

    def vector(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        digest = hashlib.blake2b(text.encode(), digest_size=16).digest()
        rng = np.random.default_rng(int.from_bytes(digest, "little"))
        vector = rng.standard_normal(self.dim, dtype=np.float32)
        return vector / np.linalg.norm(vector)

    def json(self, text: str) -> bytes:
        key = hashlib.blake2b(text.encode(), digest_size=16).digest()
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
            return found
        made = orjson.dumps(self.vector(text), option=orjson.OPT_SERIALIZE_NUMPY)
        self._cache[key] = made
        if len(self._cache) > self.keep:
            self._cache.popitem(last=False)
        return made


def response_body(vectors: Vectors, request: bytes) -> bytes:
    """The `/embeddings` response for a request body (`input`: a string or a list of them)."""
    payload = orjson.loads(request)
    inputs = payload.get("input", [])
    if isinstance(inputs, str):
        inputs = [inputs]
    parts = [
        b'{"object":"embedding","index":%d,"embedding":%s}' % (i, vectors.json(str(text)))
        for i, text in enumerate(inputs)
    ]
    tokens = sum(len(str(text)) // 4 + 1 for text in inputs)
    return (
        b'{"object":"list","data":['
        + b",".join(parts)
        + b'],"model":"%s","usage":{"prompt_tokens":%d,"total_tokens":%d}}'
        % (str(payload.get("model", MODEL)).encode(), tokens, tokens)
    )


_HEAD = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"


async def _serve_connection(
    vectors: Vectors, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.split(b"\r\n")
            method, path = lines[0].split(b" ")[:2]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            if method == b"POST" and path.rstrip(b"/").endswith(b"/embeddings"):
                status, reason, out = 200, b"OK", response_body(vectors, body)
            elif method == b"GET" and path.rstrip(b"/").endswith(b"/health"):
                status, reason, out = 200, b"OK", b'{"status":"ok"}'
            else:
                status, reason, out = 404, b"Not Found", b'{"error":{"message":"not found"}}'
            writer.write(_HEAD % (status, reason, len(out)) + out)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(host: str, port: int, dim: int) -> None:
    vectors = Vectors(dim)
    server = await asyncio.start_server(
        lambda r, w: _serve_connection(vectors, r, w), host, port, backlog=1024
    )
    async with server:
        await server.serve_forever()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeEmbedder:
    """The fake endpoint in a subprocess on a free loopback port; a context manager."""

    def __init__(self, *, dim: int = DIMENSION) -> None:
        self.dim = dim
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def server_env(self) -> dict[str, str]:
        """What `lorebase serve` needs to embed through this endpoint."""
        return {
            "EMBEDDING_PROVIDER": "openai",
            "EMBEDDING_MODEL": MODEL,
            "OPENAI_BASE_URL": self.base_url,
            "OPENAI_API_KEY": "bench-fake-key",
        }

    def __enter__(self) -> FakeEmbedder:
        command = [sys.executable, "-m", __name__, "--port", str(self.port), "--dim", str(self.dim)]
        self.process = subprocess.Popen(command)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("the fake embedder exited at start")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/health", timeout=1.0).status_code == 200:
                    return self
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError("the fake embedder did not start")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dim", type=int, default=DIMENSION)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port, args.dim))


if __name__ == "__main__":
    main()
