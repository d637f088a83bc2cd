"""Ingestion throughput against the raw embedder, measured in the same run.

    .venv/bin/python -m bench.ingest_throughput [--megabytes 2] [--json out.json]

Starts embedded PostgreSQL/Redis in a temporary data dir, generates a Markdown corpus of the
requested size (many documents of varied sections, lists and code blocks; no two chunks
alike, so the embedding cache cannot help), then measures:

1. raw: the configured embedder alone (`embed_batch` in `max_batch` batches, sorted by
   length) on the exact chunk texts the pipeline will produce;
2. ingest: the real path - upload through the service, the job on the durable queue, a
   worker (extract -> chunk -> embed -> store) - from the upload until every job succeeded,
   with the time spent in each stage taken from the jobs' progress.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from pydantic import SecretStr

from lorebase.auth.principal import Principal
from lorebase.auth.schemas import UserCreate
from lorebase.auth.service import register_user
from lorebase.context import open_context
from lorebase.embedded import start_services
from lorebase.jobs import background_worker
from lorebase.knowledge import repository
from lorebase.knowledge.chunking import chunk_document
from lorebase.knowledge.extract import extract
from lorebase.knowledge.pipeline import chunking_config
from lorebase.knowledge.runner import job_handler, worker_options
from lorebase.knowledge.service import upload_files
from lorebase.knowledge.sources.upload import UploadedFile
from lorebase.migrate import upgrade_database
from lorebase.projects.schemas import ProjectCreate
from lorebase.projects.service import create_project
from lorebase.providers.tokens import token_counter
from lorebase.settings import Settings

WORDS = [
    "cluster",
    "replica",
    "shard",
    "index",
    "vector",
    "query",
    "latency",
    "budget",
    "token",
    "window",
    "cache",
    "eviction",
    "quorum",
    "leader",
    "follower",
    "snapshot",
    "backup",
    "restore",
    "migration",
    "schema",
    "column",
    "tenant",
    "project",
    "document",
    "version",
    "chunk",
    "embedding",
    "ranking",
    "fusion",
    "recall",
    "precision",
    "worker",
    "queue",
    "lease",
    "heartbeat",
    "retry",
    "backoff",
    "timeout",
    "circuit",
    "breaker",
    "metric",
    "trace",
    "deploy",
    "rollout",
    "canary",
    "region",
    "zone",
    "volume",
    "bucket",
    "object",
    "stream",
    "batch",
    "throughput",
]


def _sentence(rng: random.Random, serial: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return f"{' '.join(words).capitalize()} ({serial})."


def corpus(megabytes: float, seed: int = 7) -> list[tuple[str, str]]:
    """(file name, Markdown) documents totalling about `megabytes` MB."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    documents: list[tuple[str, str]] = []
    size = serial = 0
    while size < target:
        parts = [f"# Service guide {len(documents)}\n"]
        for section in range(rng.randint(6, 12)):
            parts.append(f"## Part {section}: {rng.choice(WORDS)} {rng.choice(WORDS)}\n")
            for _ in range(rng.randint(2, 5)):
                serial += 1
                parts.append(" ".join(_sentence(rng, serial + i) for i in range(6)) + "\n")
                serial += 6
            if rng.random() < 0.4:
                items = "\n".join(f"- {_sentence(rng, serial + i)}" for i in range(4))
                serial += 4
                parts.append(items + "\n")
            if rng.random() < 0.3:
                serial += 1
                parts.append(
                    f"```python\ndef step_{serial}(value):\n"
                    f"    return value * {serial} + {rng.randint(1, 99)}\n```\n"
                )
        text = "\n".join(parts)
        documents.append((f"guide-{len(documents):03d}.md", text))
        size += len(text.encode())
    return documents


def cpu_seconds(data_dir: Path) -> float:
    """CPU time (user + system) of this process and of the embedded PostgreSQL serving
    `data_dir`: steadier than wall time on a shared machine, and it counts the store work
    done in the database's processes too."""
    total = sum(psutil.Process(os.getpid()).cpu_times()[:2])
    marker = str(data_dir)
    for process in psutil.process_iter(["cmdline"]):
        try:
            cmdline = " ".join(process.info["cmdline"] or [])
            if "postgres" in cmdline and marker in cmdline:
                parent = process.cpu_times()
                total += parent.user + parent.system
                for child in process.children(recursive=True):
                    times = child.cpu_times()
                    total += times.user + times.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return float(total)


async def measure(settings: Settings, megabytes: float) -> dict[str, Any]:
    async with open_context(settings) as ctx:
        embedder = ctx.embedder
        documents = corpus(megabytes)
        total_bytes = sum(len(text.encode()) for _, text in documents)
        config = chunking_config(ctx, embedder)
        count = token_counter(embedder)
        texts: list[str] = []
        chunking_started = time.perf_counter()
        for _, text in documents:
            chunks = chunk_document(
                extract("markdown", text=text), count_tokens=count, config=config
            )
            texts.extend(chunk.text for chunk in chunks)
        chunking_seconds = time.perf_counter() - chunking_started

        # The embedder's best case: batches of similar lengths (least padding), as the
        # ingestion path's embedding service batches them too.
        ordered = sorted(texts, key=len)
        data_dir = settings.lorebase_data_dir.resolve()
        cpu_before = cpu_seconds(data_dir)
        started = time.perf_counter()
        for start in range(0, len(ordered), embedder.max_batch):
            await embedder.embed_batch(ordered[start : start + embedder.max_batch])
        raw_seconds = time.perf_counter() - started
        raw_cpu = cpu_seconds(data_dir) - cpu_before

        user = await register_user(
            ctx=ctx,
            data=UserCreate(
                username=f"bench_{uuid.uuid4().hex[:8]}",
                password=SecretStr("bench password " + uuid.uuid4().hex[:8]),
            ),
            is_admin=False,
            by_operator=True,
        )
        principal = Principal(user_id=user.id, username=user.username)
        project = await create_project(
            ctx=ctx, principal=principal, data=ProjectCreate(name="ingest throughput")
        )
        cpu_before = cpu_seconds(data_dir)
        started = time.perf_counter()
        accepted = await upload_files(
            ctx=ctx,
            principal=principal,
            project_id=project.id,
            files=[UploadedFile(name=name, data=text.encode()) for name, text in documents],
        )
        accepted_seconds = time.perf_counter() - started
        job_ids = [item.job_id for item in accepted if item.job_id is not None]
        async with background_worker(ctx.db, handler=job_handler(ctx), options=worker_options(ctx)):
            while True:  # one cheap query twice a second: the poll must not steal the CPU
                await asyncio.sleep(0.5)
                async with ctx.db.connection() as conn:
                    cursor = await conn.execute(
                        "SELECT count(*) AS n FROM jobs "
                        "WHERE id = ANY(%s) AND status IN ('queued', 'running')",
                        (job_ids,),
                    )
                    pending = await cursor.fetchone()
                if pending is not None and pending["n"] == 0:
                    break
        ingest_seconds = time.perf_counter() - started
        ingest_cpu = cpu_seconds(data_dir) - cpu_before
        async with ctx.db.connection() as conn:
            rows = [await repository.get_job(conn, job_id=job_id) for job_id in job_ids]
        statuses = {row["status"] for row in rows if row is not None}
        stored = sum(
            int(((row or {}).get("payload") or {}).get("result", {}).get("chunks", 0))
            for row in rows
        )
    return {
        "embedder": f"{embedder.provider}/{embedder.model_id} ({embedder.dimension}-d)",
        "corpus_bytes": total_bytes,
        "documents": len(documents),
        "chunks": len(texts),
        "chunk_max_tokens": config.max_tokens,
        "extract_and_chunk_seconds": round(chunking_seconds, 2),
        "raw_embed_seconds": round(raw_seconds, 2),
        "raw_chunks_per_second": round(len(texts) / raw_seconds, 1),
        "upload_accepted_seconds": round(accepted_seconds, 2),
        "ingest_seconds": round(ingest_seconds, 2),
        "ingest_chunks_per_second": round(stored / ingest_seconds, 1),
        "ingest_vs_raw": round((stored / ingest_seconds) / (len(texts) / raw_seconds), 3),
        "raw_cpu_ms_per_chunk": round(1000 * raw_cpu / len(texts), 1),
        "ingest_cpu_ms_per_chunk": round(1000 * ingest_cpu / max(stored, 1), 1),
        "cpu_ingest_vs_raw": round((raw_cpu / len(texts)) / (ingest_cpu / max(stored, 1)), 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "stored_chunks": stored,
        "job_statuses": sorted(statuses),
        "worker_concurrency": ctx.settings.worker_concurrency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=float, default=2.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lorebase-ingest-bench-") as tmp:
        base = Settings(  # type: ignore[call-arg]
            _env_file=None, lorebase_data_dir=Path(tmp), log_level="WARNING"
        )
        services = start_services(base)
        try:
            upgrade_database(services.database_url)
            settings = base.model_copy(
                update={
                    "database_url": SecretStr(services.database_url),
                    "redis_url": SecretStr(services.redis_url),
                    "lorebase_secret_key": SecretStr(services.secret_key),
                }
            )
            report = asyncio.run(measure(settings, args.megabytes))
        finally:
            services.stop()
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
