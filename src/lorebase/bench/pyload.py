"""A small HTTP/1.1 keep-alive load generator (asyncio, one process): the fallback when `wrk`
cannot be installed. Run as `python -m lorebase.bench.pyload`; prints one result line.

Closed loop like wrk: each connection sends its next request when the previous answer is in.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

_MARKER = "LOREBASE_BENCH_RESULT "


def read_request_file(path: Path, host: str) -> list[bytes]:
    """Raw requests from the file `load.write_request_file` writes."""
    data = path.read_bytes()
    head, _, rest = data.partition(b"\n\n")
    headers = [line for line in head.split(b"\n") if line] if head else []
    if data.startswith(b"\n"):
        headers, rest = [], data[1:]
    out: list[bytes] = []
    pos = 0
    while pos < len(rest):
        end = rest.index(b"\n", pos)
        method, target, ctype, length = rest[pos:end].decode().split(" ")
        body = rest[end + 1 : end + 1 + int(length)]
        pos = end + 1 + int(length) + 1
        lines = [f"{method} {target} HTTP/1.1".encode(), f"Host: {host}".encode(), *headers]
        if ctype != "-":
            lines.append(f"Content-Type: {ctype}".encode())
        if body or method not in ("GET", "HEAD", "DELETE"):
            lines.append(f"Content-Length: {len(body)}".encode())
        out.append(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    return out


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (Content-Length or chunked body); returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value.strip())
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.non_2xx = 0
        self.socket_errors = 0


async def _connection(
    host: str,
    port: int,
    requests: list[bytes],
    start: int,
    stride: int,
    deadline: float,
    io_timeout: float,
    stats: Stats,
) -> None:
    index = start
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.perf_counter() < deadline:
        try:
            if stream is None:
                stream = await asyncio.wait_for(asyncio.open_connection(host, port), io_timeout)
            reader, writer = stream
            began = time.perf_counter()
            writer.write(requests[index % len(requests)])
            index += stride
            status = await asyncio.wait_for(read_response(reader), io_timeout)
            stats.latencies.append(time.perf_counter() - began)
            if not 200 <= status <= 299:
                stats.non_2xx += 1
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            stats.socket_errors += 1
            if stream is not None:
                stream[1].close()
            stream = None
    if stream is not None:
        stream[1].close()
        with contextlib.suppress(OSError):
            await stream[1].wait_closed()


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


async def run(
    url: str, requests: list[bytes], *, duration: float, connections: int, io_timeout: float
) -> dict[str, float | int]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stats = Stats()
    began = time.perf_counter()
    deadline = began + duration
    await asyncio.gather(
        *(
            _connection(host, port, requests, i, connections, deadline, io_timeout, stats)
            for i in range(connections)
        )
    )
    elapsed = time.perf_counter() - began
    lat = sorted(stats.latencies)
    ms = 1000.0
    return {
        "requests": len(lat),
        "duration_s": round(elapsed, 3),
        "rps": round(len(lat) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(lat, 50) * ms, 3),
        "p95_ms": round(percentile(lat, 95) * ms, 3),
        "p99_ms": round(percentile(lat, 99) * ms, 3),
        "max_ms": round((lat[-1] if lat else 0.0) * ms, 3),
        "mean_ms": round((sum(lat) / len(lat) if lat else 0.0) * ms, 3),
        "non_2xx": stats.non_2xx,
        "socket_errors": stats.socket_errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--requests", required=True, type=Path)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    parts = urlsplit(args.url)
    requests = read_request_file(args.requests, parts.netloc)
    with contextlib.suppress(ImportError):  # uvicorn[standard] ships uvloop
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(
        run(
            args.url,
            requests,
            duration=args.duration,
            connections=args.connections,
            io_timeout=args.timeout,
        )
    )
    print(_MARKER + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
