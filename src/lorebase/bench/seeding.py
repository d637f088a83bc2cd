"""Seeds the scenarios need, made once per run and only when a chosen scenario needs them."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lorebase.bench import corpus, profile, repository
from lorebase.bench.context import Bench, CorpusSeed
from lorebase.bench.server import MemorySampler, cpu_delta
from lorebase.db import Conn
from lorebase.documents.models import NewContent
from lorebase.documents.service import write_version
from lorebase.knowledge import bulk

log = logging.getLogger(__name__)

# Filler vectors are random mixtures of FILL_MIX real chunk vectors (Dirichlet weights) plus a
# little Gaussian noise, normalised: they stay in the region real embeddings occupy without
# forming clusters of near-duplicates whose top-10 order would be decided by noise alone.
FILL_MIX = 3
FILL_NOISE = 0.01
FILL_CHUNK_OFFSET = 1_000_000  # filler chunk_index values start here (unique per version)


def ensure_projects(bench: Bench) -> list[str]:
    """`sizes.projects` projects owned by the bench user, made through the API."""
    if not bench.projects:
        for i in range(bench.sizes.projects):
            project = bench.api.create_project(
                f"bench project {i:04d}",
                description=f"Seeded by lorebase bench ({i}).",
                tags=["bench", f"group-{i % 7}"],
            )
            bench.projects.append(project["id"])
    return bench.projects


def ensure_task_projects(bench: Bench) -> list[str]:
    """Projects holding `tasks_per_project` tasks each (some with dependencies)."""
    if not bench.task_projects:
        statuses = ["todo", "in_progress", "done", "blocked"]
        priorities = ["low", "medium", "high", "critical"]
        for p in range(bench.sizes.task_projects):
            project = bench.api.create_project(f"bench tasks {p:03d}", tags=["bench", "tasks"])
            made: list[str] = []
            for t in range(bench.sizes.tasks_per_project):
                deps = made[-2:] if t % 5 == 4 else []
                task = bench.api.create_task(
                    project["id"],
                    f"Task {t} of project {p}",
                    description=f"Seeded task number {t}: review, implement and document.",
                    status="todo" if deps else statuses[t % 3],
                    priority=priorities[t % 4],
                    assignee=f"agent-{t % 3}",
                    dependencies=deps,
                )
                made.append(task["id"])
            bench.task_projects.append(project["id"])
    return bench.task_projects


def _profile_ingestion(bench: Bench) -> subprocess.Popen[bytes] | None:
    """With --profile: py-spy on the worker that runs the ingestion jobs, until they end."""
    if bench.profile_dir is None or bench.server.process is None:
        return None
    worker = profile.worker_pids(bench.server.process.pid)[0]  # worker 0 runs the jobs
    stacks = bench.profile_dir / "ingest.txt"
    return profile.start(worker, stacks, duration=bench.sizes.ingest_timeout)


def ensure_corpus(bench: Bench) -> CorpusSeed:
    """The real-text corpus, uploaded through `/knowledge/upload` and ingested by the server's
    own worker (this is what the `ingest` scenario measures)."""
    if bench.corpus is not None:
        return bench.corpus
    bench.require("/api/v1/knowledge/upload", "/api/v1/jobs/{")
    docs = corpus.documents(bench.sizes.corpus_bytes, files=bench.sizes.corpus_files)
    project = bench.api.create_project("bench corpus", description="Python documentation")
    spy = _profile_ingestion(bench)
    cpu_before = bench.server.cpu_seconds()
    started = time.perf_counter()
    with MemorySampler(bench.server.roots()) as sampler:
        # Uploads in parallel, as several clients would; each answers 202 with its job.
        with ThreadPoolExecutor(max_workers=4) as pool:
            accepted = list(
                pool.map(lambda d: bench.api.upload(project["id"], d.name, d.text), docs)
            )
        job_ids = [item["job_id"] for items in accepted for item in items if item.get("job_id")]
        jobs = bench.api.wait_for_jobs(
            job_ids, timeout=bench.sizes.ingest_timeout, stall=bench.sizes.ingest_stall
        )
    seconds = time.perf_counter() - started
    cpu = cpu_delta(cpu_before, bench.server.cpu_seconds())
    if spy is not None:  # py-spy writes its stacks when interrupted
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)
    failed = [job for job in jobs if job["status"] != "succeeded"]
    if failed:
        log.warning("%d ingestion jobs did not succeed: %s", len(failed), failed[0].get("error"))
    chunks = asyncio.run(_chunks(bench, project["id"]))
    if not chunks:
        raise RuntimeError("ingestion stored no chunks")
    bench.corpus = CorpusSeed(
        project_id=project["id"],
        documents=len(docs),
        chunks=chunks,
        model=chunks[0]["embedding_model"],
        dim=int(chunks[0]["embedding_dim"]),
        ingest_seconds=seconds,
        jobs_failed=len(failed),
        memory_peak=sampler.peak,
        server_cpu_s=cpu["total"],
        server_cpu_by_process=cpu,
        uploaded_bytes=sum(len(doc.text.encode()) for doc in docs),
    )
    return bench.corpus


async def _chunks(bench: Bench, project_id: str) -> list[dict[str, Any]]:
    async with repository.connect(bench.server.database_url) as conn:
        rows = await repository.project_chunks(conn, project_id=uuid.UUID(project_id))
    for row in rows:
        row["embedding"] = np.asarray(row["embedding"].to_numpy(), dtype=np.float32)
    return rows


def mixtures(
    base: np.ndarray[Any, np.dtype[np.float32]], count: int, *, seed: int, block: int = 50_000
) -> Iterator[tuple[np.ndarray[Any, np.dtype[np.int64]], np.ndarray[Any, np.dtype[np.float32]]]]:
    """(dominant source row, unit vector) blocks of synthetic vectors made from `base`."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, block):
        n = min(block, count - start)
        sources = rng.integers(0, len(base), size=(n, FILL_MIX))
        weights = rng.dirichlet(np.ones(FILL_MIX), size=n).astype(np.float32)
        vectors = np.einsum("nk,nkd->nd", weights, base[sources])
        vectors += rng.normal(0.0, FILL_NOISE, vectors.shape).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        dominant = sources[np.arange(n), weights.argmax(axis=1)]
        yield dominant, vectors.astype(np.float32)


@dataclass
class _Fillers:
    """The filler rows of one fill, recording their ids and vector blocks as they are made."""

    base_rows: list[dict[str, Any]]
    project_id: uuid.UUID
    owner: tuple[uuid.UUID, uuid.UUID] | None
    model: str
    dim: int
    ids: list[uuid.UUID] = field(default_factory=list)
    blocks: list[np.ndarray[Any, np.dtype[np.float32]]] = field(default_factory=list)

    def rows(self, count: int, seed: int) -> Iterator[tuple[Any, ...]]:
        """`count` rows shaped like `knowledge.bulk.PREPARED_COLUMNS`."""
        base = np.stack([row["embedding"] for row in self.base_rows])
        for source, vectors in mixtures(base, count, seed=seed):
            self.blocks.append(vectors)
            for src, vector in zip(source.tolist(), vectors, strict=True):
                yield self._row(self.base_rows[src], vector)

    def _row(self, row: dict[str, Any], vector: Any) -> tuple[Any, ...]:
        serial = len(self.ids)
        doc, version = self.owner or (row["document_id"], row["document_version_id"])
        if self.owner is None:
            text, content_hash = row["chunk_text"], row["content_hash"]
        else:
            text = f"synthetic vector {serial}"
            content_hash = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
        rid = uuid.uuid4()
        self.ids.append(rid)
        chunk_index = FILL_CHUNK_OFFSET + serial + 1
        return (
            rid,
            self.project_id,
            doc,
            version,
            chunk_index,
            text,
            content_hash,
            vector,
            self.model,
            self.dim,
        )

    def vectors(self) -> np.ndarray[Any, np.dtype[np.float32]]:
        if not self.blocks:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(self.blocks)


async def synthetic_owner(conn: Conn, *, project_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A ready, empty document to own synthetic chunks: (document id, version id)."""
    async with conn.transaction():
        written = await write_version(
            conn,
            project_id=project_id,
            content=NewContent(content_hash="bench-synthetic", size_bytes=0, mime_type=None),
            created_by=None,
            name="synthetic-vectors",
            type="text",
            new_document=True,
            status="ready",
        )
    assert written.version is not None
    return written.document["id"], written.version["id"]


async def fill_project(
    bench: Bench,
    *,
    project_id: str,
    base_rows: list[dict[str, Any]],
    owner: tuple[uuid.UUID, uuid.UUID] | None,
    count: int,
    seed: int,
) -> dict[str, Any]:
    """COPY `count` filler chunks into a project with the HNSW index dropped, then rebuild the
    index from its own definition. Fillers reuse their source chunk's text and document (or
    `owner`'s), so full-text search and the latest-version join see them like real chunks.
    Returns timings and the filler (ids, vectors) for exact search."""
    corpus_seed = bench.corpus
    assert corpus_seed is not None
    pid = uuid.UUID(project_id)
    fillers = _Fillers(base_rows, pid, owner, corpus_seed.model, corpus_seed.dim)
    timings: dict[str, Any] = {"rows": count}
    async with repository.connect(bench.server.database_url) as conn:
        index = await repository.hnsw_index(conn, dim=corpus_seed.dim)
        if index is None:
            raise RuntimeError(f"no HNSW index for {corpus_seed.dim}-d embeddings")
        with timed(timings, "copy_seconds"):
            await repository.drop_index(conn, name=index[0])
            await bulk.load_prepared_items(conn, project_id=pid, rows=fillers.rows(count, seed))
        with timed(timings, "index_build_seconds"):
            total = await repository.count_all_chunks(conn, dim=corpus_seed.dim)
            # HNSW graph + vectors must fit maintenance_work_mem for an in-memory build.
            memory_mb = max(256, int(total * (corpus_seed.dim * 4 + 256) * 1.5 / 2**20))
            await repository.build_index(
                conn, definition=index[1], maintenance_work_mem_mb=memory_mb
            )
    timings.update(indexed_rows=total, maintenance_work_mem_mb=memory_mb)
    timings.update(ids=fillers.ids, vectors=fillers.vectors())
    return timings


@contextmanager
def timed(timings: dict[str, Any], key: str) -> Iterator[None]:
    """Store the block's wall time in `timings[key]`, in seconds to one decimal."""
    started = time.perf_counter()
    yield
    timings[key] = round(time.perf_counter() - started, 1)


def ensure_filled(bench: Bench) -> CorpusSeed:
    """The corpus project topped up to `sizes.search_chunks` chunks (real + synthetic mixtures)."""
    seed = ensure_corpus(bench)
    missing = bench.sizes.search_chunks - len(seed.chunks)
    if seed.filled_to == 0:
        if missing > 0:
            fill = asyncio.run(
                fill_project(
                    bench,
                    project_id=seed.project_id,
                    base_rows=seed.chunks,
                    owner=None,
                    count=missing,
                    seed=7,
                )
            )
            seed.fill = fill
        seed.filled_to = max(len(seed.chunks), bench.sizes.search_chunks)
    return seed
