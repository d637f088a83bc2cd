"""One local embedding model for every HTTP worker of `lorebase serve`.

uvicorn starts its workers with `spawn`, so nothing loaded in the parent is shared
copy-on-write; each worker holding its own ONNX session cost ~470 MB apiece. Instead the
parent serves the model on a Unix socket (`EmbeddingServer`, a thread per connection, one
model run at a time, onnxruntime's own threads doing the work) and each worker's context
gets a `SharedEmbedder` speaking to it. Workers keep the tokenizer (a few MB) to count tokens
for chunking locally.

Frames: a request is a 4-byte big-endian length and an orjson list of texts; a reply is one
status byte (0 ok, 1 error), a 4-byte length and either `n x dimension` float32 vectors or an
error message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socketserver
import struct
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import orjson
from tokenizers import Tokenizer

from lorebase.providers.base import BadResponse, Embedder, ProviderUnavailable
from lorebase.providers.local import LocalEmbedder, load_tokenizer
from lorebase.settings import Settings

log = logging.getLogger(__name__)

SOCKET_ENV = "LOREBASE_EMBEDDING_SOCKET"
_LENGTH = struct.Struct(">I")
_REPLY = struct.Struct(">BI")


def _read_exact(sock: socketserver.BaseRequestHandler, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.request.recv(remaining)
        if not chunk:
            raise ConnectionError("closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        while True:
            try:
                (size,) = _LENGTH.unpack(_read_exact(self, _LENGTH.size))
                texts = orjson.loads(_read_exact(self, size))
            except (ConnectionError, OSError):
                return
            try:
                vectors = self.server.embedder.embed_sync([str(t) for t in texts])
                payload = np.asarray(vectors, dtype=np.float32).tobytes()
                status = 0
            except Exception as exc:  # the worker turns it into a ProviderError
                log.exception("shared embedder failed")
                payload, status = f"{type(exc).__name__}: {exc}".encode(), 1
            try:
                self.request.sendall(_REPLY.pack(status, len(payload)) + payload)
            except OSError:
                return


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    request_queue_size = 256  # every worker's concurrent searches may connect at once
    embedder: LocalEmbedder


class EmbeddingServer:
    """The local model, loaded once, served on `path` from a background thread.

    `listen()` only binds the socket (workers forked then queue their first requests in its
    backlog); `start()` (or `with`) also loads the model and serves."""

    def __init__(self, path: Path, *, threads: int) -> None:
        self.path = path
        self.embedder = LocalEmbedder(threads=threads)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def listen(self) -> EmbeddingServer:
        if self._server is None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            server = _Server(str(self.path), _Handler)
            server.embedder = self.embedder
            os.chmod(self.path, 0o600)
            self._server = server
        return self

    def start(self) -> EmbeddingServer:
        self.listen()
        assert self._server is not None
        self.embedder.warm_up()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="embedding-server", daemon=True
        )
        self._thread.start()
        return self

    def __enter__(self) -> EmbeddingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
            self._server.server_close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class SharedEmbedder:
    """The `local` embedder of a worker whose model lives in the `lorebase serve` parent."""

    def __init__(self, path: str, *, like: Embedder) -> None:
        self._path = path
        # The parent's model: the same embedding space and limits as `like`, read once.
        self.provider = like.provider
        self.model_id = like.model_id
        self.dimension = like.dimension
        self.max_batch = like.max_batch
        self.max_input_tokens = like.max_input_tokens
        self.max_batch_tokens = like.max_batch_tokens
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._tokenizer: Tokenizer | None = None

    def warm_up(self) -> None:
        """Load the tokenizer (the model is already warm in the parent)."""
        self._tokenizer = self._tokenizer or load_tokenizer()

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        assert self._tokenizer is not None
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """One round trip to the parent's model; a broken connection is dropped, not reused."""
        if not texts:
            return []
        request = orjson.dumps(list(texts))
        try:
            reader, writer = self._idle.pop() if self._idle else await self._connect()
        except OSError as exc:
            raise ProviderUnavailable("the shared local embedder is unreachable") from exc
        try:
            writer.write(_LENGTH.pack(len(request)) + request)
            status, size = _REPLY.unpack(await reader.readexactly(_REPLY.size))
            payload = await reader.readexactly(size)
        except (OSError, asyncio.IncompleteReadError) as exc:
            writer.close()
            raise ProviderUnavailable("the shared local embedder went away") from exc
        self._idle.append((reader, writer))
        if status != 0:
            raise BadResponse(payload.decode(errors="replace"), provider=self.provider)
        vectors = np.frombuffer(payload, dtype=np.float32).reshape(len(texts), self.dimension)
        return vectors.tolist()

    async def aclose(self) -> None:
        """Close the idle connections (a worker's own ones close with the process)."""
        while self._idle:
            _, writer = self._idle.pop()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_unix_connection(self._path, limit=2**26)


def share_local_model(embedder: Embedder) -> Embedder:
    """`embedder`, or its `SharedEmbedder` when this process is a worker of a `lorebase serve`
    that serves the local model (it exports SOCKET_ENV)."""
    path = os.environ.get(SOCKET_ENV)
    if not path or not isinstance(embedder, LocalEmbedder):
        return embedder
    return SharedEmbedder(path, like=embedder)


@contextlib.contextmanager
def shared_local_model(settings: Settings, *, workers: int) -> Iterator[EmbeddingServer | None]:
    """With several workers and the `local` embedder: an `EmbeddingServer` listening on a Unix
    socket in a private temporary directory, exported as SOCKET_ENV for the workers (fork them
    now, then `start()` it to load and serve the model); None when there is nothing to share."""
    if workers < 2 or settings.embedding_provider != "local":
        yield None
        return
    threads = settings.embedding_threads or max(1, min(4, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="lorebase-") as directory:
        path = Path(directory) / "embedding.sock"  # short: AF_UNIX paths stop at 107 bytes
        server = EmbeddingServer(path, threads=threads)
        try:
            os.environ[SOCKET_ENV] = str(server.listen().path)
            yield server
        finally:
            os.environ.pop(SOCKET_ENV, None)
            server.__exit__(None, None, None)
