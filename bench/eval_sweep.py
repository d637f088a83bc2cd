"""Measure retrieval choices on a BEIR dataset: ingest once, then run the modes of
`lorebase eval` under several settings (full-text query form and ranking, fusion weights,
RRF k). The numbers behind the defaults in bench/RESULTS.md.

    LOREBASE_DATA_DIR=/tmp/lb-sweep .venv/bin/python bench/eval_sweep.py tests/data/pydoc-qa
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from lorebase.cli import running_services
from lorebase.context import open_context
from lorebase.logs import configure_logging
from lorebase.projects.service import delete_project
from lorebase.retrieval.evaluation import ingest_dataset, load_dataset, run_modes
from lorebase.settings import get_settings

# (label, modes, settings overrides)
VARIANTS: list[tuple[str, list[str], dict[str, Any]]] = [
    ("semantic", ["semantic"], {}),
    (
        "fulltext and/websearch, ts_rank_cd",
        ["fulltext"],
        {"fulltext_operator": "and", "fulltext_rank": "rank_cd"},
    ),
    (
        "fulltext and/websearch, ts_rank",
        ["fulltext"],
        {"fulltext_operator": "and", "fulltext_rank": "rank"},
    ),
    (
        "fulltext or, ts_rank_cd",
        ["fulltext"],
        {"fulltext_operator": "or", "fulltext_rank": "rank_cd"},
    ),
    ("fulltext or, ts_rank", ["fulltext"], {"fulltext_operator": "or", "fulltext_rank": "rank"}),
    (
        "fulltext or, idf x ts_rank",
        ["fulltext"],
        {"fulltext_operator": "or", "fulltext_rank": "idf"},
    ),
    (
        "hybrid and/rank_cd, w=1.0",
        ["hybrid"],
        {"fulltext_operator": "and", "fulltext_rank": "rank_cd"},
    ),
    ("hybrid or/ts_rank, w=1.0", ["hybrid"], {"fulltext_operator": "or", "fulltext_rank": "rank"}),
    ("hybrid or/idf, w=0.3", ["hybrid"], {"hybrid_fulltext_weight": 0.3}),
    ("hybrid or/idf, w=0.5", ["hybrid"], {"hybrid_fulltext_weight": 0.5}),
    ("hybrid or/idf, w=0.7", ["hybrid"], {"hybrid_fulltext_weight": 0.7}),
    ("hybrid or/idf, w=1.0", ["hybrid"], {"hybrid_fulltext_weight": 1.0}),
    ("hybrid or/idf, w=1.5", ["hybrid"], {"hybrid_fulltext_weight": 1.5}),
    ("hybrid or/idf, w=1.0, k=10", ["hybrid"], {"rrf_k": 10}),
    ("hybrid or/idf, w=1.0, k=30", ["hybrid"], {"rrf_k": 30}),
    ("hybrid or/idf, w=1.0, k=100", ["hybrid"], {"rrf_k": 100}),
    ("hybrid or/idf, w=1.0, 100 candidates", ["hybrid"], {"retrieval_candidates": 100}),
]


async def sweep(dataset_dir: Path) -> list[dict[str, Any]]:
    settings = get_settings()
    configure_logging("WARNING")
    rows: list[dict[str, Any]] = []
    with running_services(settings) as (resolved, _services):
        async with open_context(resolved) as ctx:
            dataset = load_dataset(dataset_dir)
            ingested = await ingest_dataset(
                ctx, dataset=dataset, name=dataset_dir.name, say=lambda m: print(m, file=sys.stderr)
            )
            base = ctx.settings
            try:
                for label, modes, overrides in VARIANTS:
                    ctx.settings = base.model_copy(update={**overrides})
                    ctx.extras.pop("rerankers", None)
                    for result in await run_modes(
                        ctx, ingested=ingested, dataset=dataset, modes=modes, say=lambda m: None
                    ):
                        row = {"variant": label, **result.__dict__}
                        rows.append(row)
                        print(
                            f"{label:<40} nDCG@10 {result.ndcg_at_10:.3f}  R@10 "
                            f"{result.recall_at_10:.3f}  R@100 {result.recall_at_100:.3f}  "
                            f"MRR@10 {result.mrr_at_10:.3f}  p50 {result.p50_ms:.1f} ms  "
                            f"by kind {result.ndcg_at_10_by_kind}",
                            flush=True,
                        )
            finally:
                ctx.settings = base
                await delete_project(
                    ctx=ctx, principal=ingested.principal, project_id=ingested.project_id
                )
    return rows


def main() -> None:
    rows = asyncio.run(sweep(Path(sys.argv[1])))
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    if out is not None:
        out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
