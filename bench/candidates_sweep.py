"""Hybrid search's candidates per leg against the results asked for: nDCG@k, R@k and MRR@k of
`hybrid` at top_k 5 and 10 for several RETRIEVAL_CANDIDATES_PER_RESULT values, each dataset
ingested once through the product (bench/RESULTS.md, issue 13). `lorebase eval` asks for 100
results, where the ceiling (RETRIEVAL_CANDIDATES) never binds, so it cannot show this.

    LOREBASE_DATA_DIR=/tmp/lb-cand .venv/bin/python bench/candidates_sweep.py \\
        tests/data/pydoc-qa eval/zsh-faq --json /tmp/candidates.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from lorebase.auth.permissions import Permission
from lorebase.cli.base import running_services
from lorebase.context import AppContext, open_context
from lorebase.evaluation.dataset import Dataset, Ingested, load_dataset
from lorebase.evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k
from lorebase.evaluation.runner import ingest_dataset
from lorebase.logs import configure_logging
from lorebase.projects.service import delete_project, get_project_for
from lorebase.retrieval.search import hybrid_candidates, search, target_of
from lorebase.settings import get_settings

TOP_KS = (5, 10)
# 100 per result: the ceiling (RETRIEVAL_CANDIDATES, 50) always binds, as before issue 13.
FACTORS = (2, 3, 4, 5, 100)


async def measure(
    ctx: AppContext, ingested: Ingested, dataset: Dataset, top_k: int
) -> dict[str, float]:
    access = await get_project_for(
        ctx.db,
        principal=ingested.principal,
        project_id=ingested.project_id,
        permission=Permission.READ,
    )
    ndcg, recall, mrr = [], [], []
    for qid, text in dataset.queries.items():
        outcome = await search(
            ctx, target=target_of(access), query_text=text, mode="hybrid", top_k=top_k
        )
        ranked: list[str] = []
        for result in outcome.results:
            corpus_id = ingested.doc_of.get(result.document_id)
            if corpus_id is not None and corpus_id not in ranked:
                ranked.append(corpus_id)
        relevant = dataset.qrels[qid]
        ndcg.append(ndcg_at_k(ranked, relevant, top_k))
        recall.append(recall_at_k(ranked, relevant, top_k))
        mrr.append(mrr_at_k(ranked, relevant, top_k))
    return {
        "ndcg": round(statistics.fmean(ndcg), 4),
        "recall": round(statistics.fmean(recall), 4),
        "mrr": round(statistics.fmean(mrr), 4),
    }


async def sweep_one(ctx: AppContext, path: Path) -> list[dict[str, Any]]:
    dataset = load_dataset(path)
    say = lambda m: print(f"{path.name}: {m}", file=sys.stderr, flush=True)  # noqa: E731
    ingested = await ingest_dataset(ctx, dataset=dataset, name=path.name, say=say)
    base = ctx.settings
    rows = []
    try:
        for top_k in TOP_KS:
            for factor in FACTORS:
                ctx.settings = base.model_copy(update={"retrieval_candidates_per_result": factor})
                per_leg = hybrid_candidates(ctx.settings, top_k=top_k, pool=top_k)
                row = {"dataset": path.name, "top_k": top_k, "factor": factor, "per_leg": per_leg}
                row.update(await measure(ctx, ingested, dataset, top_k))
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        ctx.settings = base
        await delete_project(ctx=ctx, principal=ingested.principal, project_id=ingested.project_id)
    return rows


async def sweep(paths: list[Path]) -> list[dict[str, Any]]:
    configure_logging("WARNING")
    rows: list[dict[str, Any]] = []
    with running_services(get_settings()) as (resolved, _services):
        async with open_context(resolved) as ctx:
            for path in paths:
                rows += await sweep_one(ctx, path)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = asyncio.run(sweep(args.datasets))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
