"""Measure retrieval choices on BEIR datasets, the numbers behind the defaults in
bench/RESULTS.md. Each dataset is ingested once through the product; every query then runs
through the search service once per leg (semantic, full-text with each ranking), and the
fusion variants are computed from those candidate lists with `lorebase.retrieval.fusion`
(exactly what the search service would fuse). rank_bm25's BM25Okapi over the same documents
(Snowball-stemmed, stop words dropped) is the reference the full-text leg is held to.

    LOREBASE_DATA_DIR=/tmp/lb-sweep .venv/bin/python bench/eval_sweep.py \\
        eval/curl-faq eval/fetchmail-faq eval/pyweb-faq eval/zsh-faq tests/data/pydoc-qa \\
        --json /tmp/sweep.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import snowballstemmer  # type: ignore[import-untyped]
from rank_bm25 import BM25Okapi  # type: ignore[import-untyped]

from lorebase.auth.permissions import Permission
from lorebase.cli.base import running_services
from lorebase.context import AppContext, open_context
from lorebase.evaluation.dataset import Dataset, Ingested, load_dataset
from lorebase.evaluation.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from lorebase.evaluation.runner import ingest_dataset
from lorebase.logs import configure_logging
from lorebase.projects.service import delete_project, get_project_for
from lorebase.providers.extractive import sentences
from lorebase.retrieval.fusion import convex, gated_share, lexical_weight, top_margin, weighted_rrf
from lorebase.retrieval.search import search, target_of
from lorebase.settings import get_settings

DEPTH = 100
RERANK_WINDOW = 20
RERANK = False  # --rerank: the offline max-sim rerankers too (embeds every sentence)
DUMP: Path | None = None  # --dump DIR: each set's chunks and leg lists, for offline analysis
TEXTS: dict[uuid.UUID, str] = {}  # chunk id -> text, of every chunk a leg returned
Hits = list[tuple[uuid.UUID, float]]  # chunk id, score; best first
_STEM = snowballstemmer.stemmer("english")
_WORD = re.compile(r"\w+")
_STOP_WORDS = (
    "a an and are as at be by for from has have how i if in is it of on or that the this to "
    "was what when where which who why will with do does can my you your not"
)
_STOP = frozenset(_STOP_WORDS.split())


def tokens(text: str) -> list[str]:
    return list(_STEM.stemWords([w for w in _WORD.findall(text.lower()) if w not in _STOP]))


def metrics(ranked_docs: dict[str, list[str]], dataset: Dataset) -> dict[str, Any]:
    ndcg, r10, mrr = [], [], []
    by_kind: dict[str, list[float]] = {}
    for qid, ranked in ranked_docs.items():
        relevant = dataset.qrels[qid]
        ndcg.append(ndcg_at_k(ranked, relevant, 10))
        r10.append(recall_at_k(ranked, relevant, 10))
        mrr.append(mrr_at_k(ranked, relevant, 10))
        by_kind.setdefault(dataset.kinds.get(qid, "natural"), []).append(ndcg[-1])
    return {
        "ndcg_at_10": round(statistics.fmean(ndcg), 4),
        "recall_at_10": round(statistics.fmean(r10), 4),
        "mrr_at_10": round(statistics.fmean(mrr), 4),
        "by_kind": {k: round(statistics.fmean(v), 4) for k, v in sorted(by_kind.items())},
    }


def to_docs(hits: Hits, doc_of_chunk: dict[uuid.UUID, str]) -> list[str]:
    ranked: list[str] = []
    for chunk, _ in hits:
        doc = doc_of_chunk.get(chunk)
        if doc is not None and doc not in ranked:
            ranked.append(doc)
    return ranked


async def collect(
    ctx: AppContext, ingested: Ingested, dataset: Dataset, ranks: Sequence[str]
) -> tuple[dict[str, dict[str, Hits]], dict[uuid.UUID, str], dict[str, float]]:
    """Per leg, per query: the leg's top DEPTH chunks with scores; chunk -> corpus id; p50."""
    access = await get_project_for(
        ctx.db,
        principal=ingested.principal,
        project_id=ingested.project_id,
        permission=Permission.READ,
    )
    target = target_of(access)
    base = ctx.settings
    legs: dict[str, dict[str, Hits]] = {}
    doc_of_chunk: dict[uuid.UUID, str] = {}
    p50: dict[str, float] = {}
    runs = [("semantic", "semantic", base.fulltext_rank)] + [
        (f"fulltext:{rank}", "fulltext", rank) for rank in ranks
    ]
    for label, mode, rank in runs:
        ctx.settings = base.model_copy(update={"fulltext_rank": rank})
        legs[label], latencies = {}, []
        for qid, text in dataset.queries.items():
            started = time.perf_counter()
            outcome = await search(
                ctx,
                target=target,
                query_text=text,
                mode=mode,  # type: ignore[arg-type]
                top_k=DEPTH,
                use_query_cache=False,
            )
            latencies.append((time.perf_counter() - started) * 1000)
            legs[label][qid] = [(r.id, r.similarity_score) for r in outcome.results]
            for r in outcome.results:
                TEXTS[r.id] = r.chunk_text
                corpus_id = ingested.doc_of.get(r.document_id)
                if corpus_id is not None:
                    doc_of_chunk[r.id] = corpus_id
        p50[label] = round(percentile(latencies, 50), 1)
    ctx.settings = base
    return legs, doc_of_chunk, p50


def bm25_okapi(dataset: Dataset) -> dict[str, list[str]]:
    ids = list(dataset.corpus)
    index = BM25Okapi([tokens(f"{t}\n{x}") for t, x in (dataset.corpus[i] for i in ids)])
    ranked: dict[str, list[str]] = {}
    for qid, text in dataset.queries.items():
        scores = index.get_scores(tokens(text))
        order = sorted(range(len(ids)), key=lambda i: -scores[i])[:DEPTH]
        ranked[qid] = [ids[i] for i in order if scores[i] > 0]
    return ranked


Fuser = Callable[[str, Hits, Hits], Hits]


def fusers() -> dict[str, Fuser]:
    out: dict[str, Fuser] = {
        "rrf k=60 w=1": lambda q, d, t: weighted_rrf(
            [([i for i, _ in d], 1.0), ([i for i, _ in t], 1.0)]
        ),
        "rrf k=60 wt=0.5": lambda q, d, t: weighted_rrf(
            [([i for i, _ in d], 1.0), ([i for i, _ in t], 0.5)]
        ),
    }
    for alpha in (0.7, 0.8, 0.85, 0.9):
        out[f"minmax dense={alpha}"] = lambda q, d, t, a=alpha: convex([(d, a), (t, 1 - a)])
        out[f"zscore dense={alpha}"] = lambda q, d, t, a=alpha: convex(
            [(d, a), (t, 1 - a)], how="zscore"
        )
    for base, boosted in ((0.15, 0.5), (0.2, 0.5), (0.3, 0.5)):

        def adaptive_z(q: str, d: Hits, t: Hits, b: float = base, x: float = boosted) -> Hits:
            w = lexical_weight(q, base=b, boosted=x)
            return convex([(d, 1 - w), (t, w)], how="zscore")

        out[f"adaptive zscore lex={base}/{boosted}"] = adaptive_z
    out.update(gated_fusers())
    return out


def gated_fusers() -> dict[str, Fuser]:
    """The lexical leg's share scaled by its confidence (its best hit's margin), alone or on
    top of the query-adaptive share; and its candidates kept only near the dense top."""
    out: dict[str, Fuser] = {}
    for share in (0.3, 0.5):
        for full_at in (0.2, 0.4, 0.6):

            def gated(
                q: str, d: Hits, t: Hits, s: float = share, f: float = full_at, how: Any = "zscore"
            ) -> Hits:
                w = gated_share(s, top_margin([x for _, x in t]), full_at=f)
                return convex([(d, 1 - w), (t, w)], how=how)

            def gated_adaptive(
                q: str, d: Hits, t: Hits, s: float = share, f: float = full_at
            ) -> Hits:
                w = lexical_weight(
                    q, base=gated_share(s, top_margin([x for _, x in t]), full_at=f), boosted=0.5
                )
                return convex([(d, 1 - w), (t, w)], how="zscore")

            out[f"gated zscore lex={share} full@{full_at}"] = gated
            out[f"gated minmax lex={share} full@{full_at}"] = (
                lambda q, d, t, s=share, f=full_at: gated(q, d, t, s, f, "minmax")
            )
            out[f"gated+adaptive zscore lex={share} full@{full_at} kw=0.5"] = gated_adaptive
    for top_n in (10, 20):

        def within(q: str, d: Hits, t: Hits, n: int = top_n) -> Hits:
            near = {i for i, _ in d[:n]}
            return convex([(d, 0.7), ([h for h in t if h[0] in near], 0.3)], how="zscore")

        out[f"zscore dense=0.7 lexical within dense top {top_n}"] = within
    return out


async def embed_all(ctx: AppContext, texts: Sequence[str]) -> dict[str, list[float]]:
    unique = list(dict.fromkeys(texts))
    vectors: dict[str, list[float]] = {}
    for start in range(0, len(unique), 64):
        batch = unique[start : start + 64]
        vectors.update(zip(batch, await ctx.embedder.embed_batch(batch), strict=True))
    return vectors


def _cos(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=False))


async def rerankers(
    ctx: AppContext, dataset: Dataset, bases: dict[str, dict[str, Hits]]
) -> dict[str, dict[str, Hits]]:
    """Each base list's top RERANK_WINDOW re-scored with the local model, no new weights:
    max over the chunk's sentences of cos(query, sentence), alone, averaged with the chunk's
    own cosine, or RRF-fused with the base order. The tail keeps the base order."""
    window = {c for lists in bases.values() for h in lists.values() for c, _ in h[:RERANK_WINDOW]}
    split = {c: sentences(TEXTS[c]) or [TEXTS[c]] for c in window}
    vec = await embed_all(
        ctx,
        [
            *dataset.queries.values(),
            *(TEXTS[c] for c in window),
            *(x for v in split.values() for x in v),
        ],
    )
    out: dict[str, dict[str, Hits]] = {}
    for base, lists in bases.items():
        for variant in ("maxsim", "chunk+maxsim", "rrf(base,maxsim)"):
            out[f"{base} + rerank {variant}"] = {}
        for qid, hits in lists.items():
            q = vec[dataset.queries[qid]]
            head, tail = hits[:RERANK_WINDOW], hits[RERANK_WINDOW:]
            maxsim = {c: max(_cos(q, vec[x]) for x in split[c]) for c, _ in head}
            both = {c: 0.5 * _cos(q, vec[TEXTS[c]]) + 0.5 * maxsim[c] for c, _ in head}
            by_max = sorted(head, key=lambda h: -maxsim[h[0]])
            out[f"{base} + rerank maxsim"][qid] = by_max + tail
            out[f"{base} + rerank chunk+maxsim"][qid] = (
                sorted(head, key=lambda h: -both[h[0]]) + tail
            )
            fused = weighted_rrf([([c for c, _ in head], 1.0), ([c for c, _ in by_max], 1.0)])
            out[f"{base} + rerank rrf(base,maxsim)"][qid] = [(c, x) for c, x in fused] + tail
    return out


async def dump(
    ctx: AppContext, ingested: Ingested, legs: dict[str, dict[str, Hits]], out: Path
) -> None:
    """Every chunk of the set (id, corpus id, text) and every leg's lists, as JSON: what
    `bench/lexical_offline.py` re-ranks without ingesting again."""
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT id, document_id, chunk_index, chunk_text FROM knowledge_items "
            "WHERE project_id = %s ORDER BY document_id, chunk_index",
            (ingested.project_id,),
        )
        rows = await cur.fetchall()
    chunks = [
        [str(r["id"]), ingested.doc_of[r["document_id"]], r["chunk_text"]]
        for r in rows
        if r["document_id"] in ingested.doc_of
    ]
    lists = {
        leg: {q: [[str(c), s] for c, s in hits] for q, hits in per_query.items()}
        for leg, per_query in legs.items()
    }
    await asyncio.to_thread(_write_json, out, {"chunks": chunks, "legs": lists})


def _write_json(out: Path, value: Any) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(value))


async def sweep_one(ctx: AppContext, path: Path, ranks: Sequence[str]) -> list[dict[str, Any]]:
    dataset = load_dataset(path)
    say = lambda m: print(f"{path.name}: {m}", file=sys.stderr, flush=True)  # noqa: E731
    ingested = await ingest_dataset(ctx, dataset=dataset, name=path.name, say=say)
    try:
        legs, doc_of_chunk, p50 = await collect(ctx, ingested, dataset, ranks)
        if DUMP is not None:
            await dump(ctx, ingested, legs, DUMP / f"{path.name}.json")
    finally:
        async with ctx.db.transaction() as conn:
            await delete_project(conn, principal=ingested.principal, project_id=ingested.project_id)
    rows: list[dict[str, Any]] = []

    def add(variant: str, ranked: dict[str, list[str]], latency: float | None) -> None:
        row = {
            "dataset": path.name,
            "variant": variant,
            "p50_ms": latency,
            **metrics(ranked, dataset),
        }
        rows.append(row)
        print(
            f"{path.name:<14}{variant:<40} nDCG@10 {row['ndcg_at_10']:.3f}  R@10 "
            f"{row['recall_at_10']:.3f}  MRR@10 {row['mrr_at_10']:.3f}  by kind {row['by_kind']}",
            flush=True,
        )

    for label, hits in legs.items():
        add(label, {q: to_docs(h, doc_of_chunk) for q, h in hits.items()}, p50[label])
    add("rank_bm25 BM25Okapi (documents)", bm25_okapi(dataset), None)
    for rank in ranks:
        for name, fuse in fusers().items():
            fused = {
                q: to_docs(
                    fuse(dataset.queries[q], legs["semantic"][q], legs[f"fulltext:{rank}"][q]),
                    doc_of_chunk,
                )
                for q in dataset.queries
            }
            add(f"hybrid[{rank}] {name}", fused, None)
    if RERANK:
        await add_reranked(ctx, dataset, legs, doc_of_chunk, add)
    return rows


async def add_reranked(
    ctx: AppContext,
    dataset: Dataset,
    legs: dict[str, dict[str, Hits]],
    doc_of_chunk: dict[uuid.UUID, str],
    add: Callable[[str, dict[str, list[str]], float | None], None],
) -> None:
    """The offline rerankers over semantic and the hybrid fusions worth re-ranking."""
    every = fusers()
    text = legs.get("fulltext:idf") or next(v for k, v in legs.items() if k != "semantic")
    bases: dict[str, dict[str, Hits]] = {"semantic": legs["semantic"]}
    for name in ("rrf k=60 w=1", "zscore dense=0.7"):
        bases[f"hybrid {name}"] = {
            q: every[name](dataset.queries[q], legs["semantic"][q], text[q])
            for q in dataset.queries
        }
    started = time.perf_counter()
    reranked = await rerankers(ctx, dataset, bases)
    print(f"rerank embeddings: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    for label, lists in reranked.items():
        add(label, {q: to_docs(h, doc_of_chunk) for q, h in lists.items()}, None)


async def sweep(paths: list[Path], ranks: Sequence[str]) -> list[dict[str, Any]]:
    settings = get_settings()
    configure_logging("WARNING")
    rows: list[dict[str, Any]] = []
    with running_services(settings) as (resolved, _services):
        async with open_context(resolved) as ctx:
            for path in paths:
                rows += await sweep_one(ctx, path, ranks)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--rank", action="append", default=[], help="full-text rankings")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rerank", action="store_true", help="offline max-sim rerankers")
    parser.add_argument("--dump", type=Path, help="write each set's chunks and legs here")
    args = parser.parse_args()
    global RERANK, DUMP
    RERANK = args.rerank
    DUMP = args.dump
    rows = asyncio.run(sweep(args.datasets, args.rank or ["idf", "bm25"]))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
