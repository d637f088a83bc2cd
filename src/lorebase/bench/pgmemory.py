"""PostgreSQL's memory, split by what it is (issue 18), for the soak scenario.

A plain RSS sum over PostgreSQL's processes mixes three things that behave differently:

- **shared memory** (`Pss_Shmem` in /proc/<pid>/smaps_rollup): the buffer pool and the other
  shared structures. A page counts in a process's RSS from the first time that process touches
  it, so RSS grows while searches read pages they had not read before, up to the size of the
  shared memory segment (`shared_buffers` plus a few MB), and the same page counts once in every
  backend that touched it. Summed PSS counts each resident page once: the pool's resident size.
- **private memory** (`Pss_Anon`): what each backend allocates for itself (catalog and plan
  caches, sorts up to `work_mem`). This is where a leak would show.
- **file pages** (`Pss_File`): the postgres binary and libraries, shared by all.

`backends` counts client backends (the pools of the server's processes); their number is bounded
by the pool size per process (`DATABASE_POOL_MAX`) times the processes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import psycopg

FIELDS = ("Rss", "Pss", "Pss_Anon", "Pss_Shmem", "Pss_File")


def smaps_rollup(pid: int) -> dict[str, int]:
    """The kB fields of `FIELDS` from /proc/<pid>/smaps_rollup (empty if the process is gone)."""
    values: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in FIELDS:
                values[key] = int(rest.split()[0])
    return values


def backend_types(database_url: str) -> dict[int, str]:
    """pid -> backend_type of every PostgreSQL process (pg_stat_activity), our own excluded."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, backend_type FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
        ).fetchall()
    return {int(pid): str(kind) for pid, kind in rows}


def shared_memory_bound(database_url: str) -> dict[str, Any]:
    """The configured bounds: `shared_buffers` and the whole shared memory segment (MiB)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        buffers = conn.execute(
            "SELECT setting::bigint * current_setting('block_size')::bigint"
            " FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()
        segment = conn.execute("SELECT sum(allocated_size) FROM pg_shmem_allocations").fetchone()
        work_mem = conn.execute("SELECT current_setting('work_mem')").fetchone()
    return {
        "shared_buffers_mb": round(int(buffers[0] if buffers else 0) / 2**20, 1),
        "segment_mb": round(int(segment[0] if segment and segment[0] else 0) / 2**20, 1),
        "work_mem": str(work_mem[0]) if work_mem else "",
    }


def postgres_memory(pids: list[int], database_url: str) -> dict[str, Any]:
    """PostgreSQL's memory by kind (see the module docstring) over `pids` (its processes)."""
    kinds = backend_types(database_url)
    totals = dict.fromkeys(FIELDS, 0)
    private_per_backend: list[int] = []
    for pid in pids:
        fields = smaps_rollup(pid)
        for name in FIELDS:
            totals[name] += fields.get(name, 0)
        if kinds.get(pid) == "client backend":
            private_per_backend.append(fields.get("Pss_Anon", 0))
    backends = len(private_per_backend)
    mib = 1024
    return {
        "processes": len(pids),
        "backends": backends,
        "rss_mb": round(totals["Rss"] / mib, 1),
        "pss_mb": round(totals["Pss"] / mib, 1),
        "shared_mb": round(totals["Pss_Shmem"] / mib, 1),
        "private_mb": round(totals["Pss_Anon"] / mib, 1),
        "file_mb": round(totals["Pss_File"] / mib, 1),
        "private_mb_per_backend": round(sum(private_per_backend) / max(1, backends) / mib, 2),
        "private_mb_max_backend": round(max(private_per_backend, default=0) / mib, 2),
    }


def prewarm(database_url: str) -> dict[str, Any]:
    """Read the corpus's tables and indexes into the buffer pool (pg_prewarm), so that a warm-up
    ends with the pages the searches need resident; a real server reaches the same state after
    enough distinct searches. Relations larger than the pool are skipped (they would only cycle
    it). Returns the blocks read and the relations skipped."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        row = conn.execute(
            "SELECT setting::bigint FROM pg_settings WHERE name = 'shared_buffers'"
        ).fetchone()
        pool_blocks = int(row[0]) if row else 0
        relations = conn.execute(
            "SELECT c.oid::regclass::text, pg_relation_size(c.oid) / current_setting("
            "'block_size')::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 't', 'm')"
            " ORDER BY 2 DESC"
        ).fetchall()
        read, skipped, budget = 0, [], pool_blocks
        for name, blocks in relations:
            if int(blocks) > budget:
                skipped.append(name)
                continue
            done = conn.execute("SELECT pg_prewarm(%s::regclass)", (name,)).fetchone()
            read += int(done[0]) if done else 0
            budget -= int(blocks)
    return {"blocks": read, "mb": round(read * 8 / 1024, 1), "skipped": skipped}
