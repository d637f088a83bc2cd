"""Drive a server with `wrk` (installed from Debian's packages when missing) or, failing that,
with the Python load generator in `pyload`, always in another process."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)

GENERATORS = ("auto", "wrk", "python")
_MARKER = "LOREBASE_BENCH_RESULT "
JSON = "application/json"


@dataclass(frozen=True)
class Request:
    """One HTTP request the generator sends; a scenario rotates through a list of them."""

    method: str
    path: str
    body: bytes = b""
    content_type: str | None = None


def query_body(project_id: str, text: str, *, hybrid: bool, answer: bool = False) -> bytes:
    """A `POST /rag/query` body as the scenarios send it: top 5, never re-ranked."""
    return orjson.dumps(
        {
            "project_id": project_id,
            "query_text": text,
            "top_k": 5,
            "use_hybrid_search": hybrid,
            "use_re_ranking": False,
            "use_agentic_rag": answer,
        }
    )


def query_request(project_id: str, text: str, *, hybrid: bool, answer: bool = False) -> Request:
    """`POST /api/v1/rag/query` with a `query_body`."""
    body = query_body(project_id, text, hybrid=hybrid, answer=answer)
    return Request("POST", "/api/v1/rag/query", body, JSON)


@dataclass(frozen=True)
class LoadSpec:
    base_url: str
    requests: list[Request]
    headers: dict[str, str] = field(default_factory=dict)
    duration: float = 10.0
    connections: int = 32
    threads: int = 1
    timeout: float = 10.0


@dataclass(frozen=True)
class LoadResult:
    """What a load run measured; latencies in milliseconds."""

    generator: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non_2xx: int
    socket_errors: int
    distinct_requests: int

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    @property
    def repeated(self) -> bool:
        """Whether the run sent more requests than it had distinct ones (some were repeats)."""
        return self.requests > self.distinct_requests

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "errors": self.errors}


def ensure_wrk() -> str | None:
    """Path to `wrk`; installs Debian's package when missing and apt is usable."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in ([apt, "install", "-y", "-qq", "wrk"], [apt, "update", "-qq"]):
        log.info("installing wrk: %s", " ".join(attempt[1:]))
        subprocess.run(attempt, env=env, capture_output=True, timeout=600, check=False)
        if attempt[1] == "update":
            subprocess.run(
                [apt, "install", "-y", "-qq", "wrk"],
                env=env,
                capture_output=True,
                timeout=600,
                check=False,
            )
        found = shutil.which("wrk")
        if found:
            return found
    return None


def resolve_generator(choice: str) -> tuple[str, str | None]:
    """('wrk', path) or ('python', None) for the requested generator."""
    if choice == "python":
        return "python", None
    path = ensure_wrk()
    if path is not None:
        return "wrk", path
    if choice == "wrk":
        raise RuntimeError("wrk is not installed and could not be installed with apt-get")
    log.warning("wrk unavailable; using the Python load generator")
    return "python", None


# The Lua script reads the request file once per wrk thread (each has its own Lua state),
# pre-formats every request, and walks the list from a per-thread offset so that threads send
# disjoint requests. `response` counts statuses outside 2xx (wrk itself only counts >= 400).
_LUA = r"""
local reqs = {}
local n = 0
local i = 0
local stride = 1
non2xx = 0  -- global: done() reads it with thread:get
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  thread:set("nthreads", 0)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local hdrs = {}
  while true do
    local line = f:read("*l")
    if line == nil or line == "" then break end
    local k, v = line:match("^([^:]+):%s*(.*)$")
    hdrs[k] = v
  end
  while true do
    local head = f:read("*l")
    if head == nil then break end
    local method, path, ctype, len = head:match("^(%S+) (%S+) (%S+) (%d+)$")
    local body = nil
    len = tonumber(len)
    if len > 0 then body = f:read(len) end
    f:read("*l")
    local h = {}
    for k, v in pairs(hdrs) do h[k] = v end
    if ctype ~= "-" then h["Content-Type"] = ctype end
    n = n + 1
    reqs[n] = wrk.format(method, path, h, body)
  end
  f:close()
  stride = tonumber(args[2])
  i = tid
end

function request()
  local r = reqs[(i % n) + 1]
  i = i + stride
  return r
end

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  local e = summary.errors
  io.write("LOREBASE_BENCH_RESULT ")
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"p50":%d,"p95":%d,"p99":%d,"max":%d,"mean":%f,' ..
    '"non_2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, bad, e.connect, e.read, e.write,
    e.timeout))
end
"""


def write_request_file(path: Path, spec: LoadSpec) -> None:
    """Headers, a blank line, then per request `METHOD PATH CTYPE LEN\\n<body>\\n`."""
    with path.open("wb") as out:
        for name, value in spec.headers.items():
            out.write(f"{name}: {value}\n".encode())
        out.write(b"\n")
        for req in spec.requests:
            out.write(
                f"{req.method} {req.path} {req.content_type or '-'} {len(req.body)}\n".encode()
            )
            out.write(req.body + b"\n")


def _measure(
    cmd: list[str], spec: LoadSpec, failure: Callable[[subprocess.CompletedProcess[str]], str]
) -> dict[str, Any]:
    """Run a generator process for `spec`; the result it prints after `_MARKER`, or
    RuntimeError(`failure(proc)`)."""
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=spec.duration + 120, check=False
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith(_MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(failure(proc))
    raw: dict[str, Any] = json.loads(line[len(_MARKER) :])
    return raw


def _run_wrk(wrk: str, spec: LoadSpec, workdir: Path) -> LoadResult:
    script = workdir / "bench.lua"
    script.write_text(_LUA)
    data = workdir / "requests.txt"
    write_request_file(data, spec)
    threads = max(1, min(spec.threads, spec.connections))
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{spec.connections}",
        f"-d{max(1, round(spec.duration))}s",
        f"--timeout={max(1, round(spec.timeout))}s",
        "-s",
        str(script),
        spec.base_url,
        "--",
        str(data),
        str(threads),
    ]
    raw = _measure(
        cmd, spec, lambda proc: f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}"
    )
    duration = raw["duration_us"] / 1e6
    return LoadResult(
        generator="wrk",
        requests=raw["requests"],
        duration_s=round(duration, 3),
        rps=round(raw["requests"] / duration, 1) if duration else 0.0,
        p50_ms=raw["p50"] / 1000,
        p95_ms=raw["p95"] / 1000,
        p99_ms=raw["p99"] / 1000,
        max_ms=raw["max"] / 1000,
        mean_ms=round(raw["mean"] / 1000, 3),
        non_2xx=raw["non_2xx"],
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        distinct_requests=len(spec.requests),
    )


def _run_python(spec: LoadSpec, workdir: Path) -> LoadResult:
    data = workdir / "requests.txt"
    write_request_file(data, spec)
    cmd = [
        sys.executable,
        "-m",
        "lorebase.bench.pyload",
        "--url",
        spec.base_url,
        "--requests",
        str(data),
        "--duration",
        str(spec.duration),
        "--connections",
        str(spec.connections),
        "--timeout",
        str(spec.timeout),
    ]
    raw = _measure(cmd, spec, lambda proc: f"python load generator failed: {proc.stderr[-2000:]}")
    return LoadResult(generator="python", distinct_requests=len(spec.requests), **raw)


def run_load(spec: LoadSpec, *, generator: str, wrk_path: str | None) -> LoadResult:
    """Run one load test in another process and return what it measured."""
    if not spec.requests:
        raise ValueError("a load spec needs at least one request")
    with tempfile.TemporaryDirectory(prefix="lorebase-bench-") as tmp:
        if generator == "wrk":
            assert wrk_path is not None
            return _run_wrk(wrk_path, spec, Path(tmp))
        return _run_python(spec, Path(tmp))
