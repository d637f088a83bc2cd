"""Fusion functions the product does not have, measured over the legs that
`bench/eval_sweep.py --dump DIR` wrote (no ingestion): document-level fusion (each leg's best
chunk per document, then combined) and the "theoretical min-max" convex combination (the dense
cosine as it is, or rescaled from `lo`; the full-text score divided by its top score), beside
the chunk-level min-max and z-score fusions of `lorebase.retrieval.fusion`.

    .venv/bin/python bench/fusion_offline.py /tmp/dump eval/curl-faq eval/fetchmail-faq \\
        eval/pyweb-faq eval/zsh-faq tests/data/pydoc-qa
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

from lorebase.evaluation.dataset import Dataset, load_dataset
from lorebase.evaluation.metrics import ndcg_at_k
from lorebase.retrieval.fusion import convex, weighted_rrf

Hits = list[tuple[str, float]]
Fuser = Callable[[Hits, Hits, dict[str, str]], Hits]


def documents(hits: Hits, doc_of: dict[str, str]) -> list[str]:
    ranked: list[str] = []
    for item, _ in hits:
        doc = doc_of.get(item, item)
        if doc not in ranked:
            ranked.append(doc)
    return ranked


def document_level(hits: Hits, doc_of: dict[str, str]) -> Hits:
    best: dict[str, float] = {}
    for chunk, score in hits:
        doc = doc_of[chunk]
        best[doc] = max(score, best.get(doc, score))
    return sorted(best.items(), key=lambda pair: -pair[1])


def theoretical_min_max(dense: Hits, text: Hits, share: float, lo: float) -> Hits:
    top = text[0][1] if text else 1.0
    fused: dict[str, float] = {}
    for item, score in dense:
        fused[item] = fused.get(item, 0.0) + share * (score - lo) / (1 - lo)
    for item, score in text:
        fused[item] = fused.get(item, 0.0) + (1 - share) * score / top
    return sorted(fused.items(), key=lambda pair: -pair[1])


def fusers() -> dict[str, Fuser]:
    out: dict[str, Fuser] = {}
    for how in ("zscore", "minmax"):
        for a in (0.6, 0.7, 0.8, 0.85, 0.9):
            out[f"doclevel {how} dense={a}"] = lambda d, t, m, a=a, how=how: convex(
                [(document_level(d, m), a), (document_level(t, m), 1 - a)], how=how  # type: ignore[list-item]
            )
            out[f"chunk {how} dense={a}"] = lambda d, t, m, a=a, how=how: convex(
                [(d, a), (t, 1 - a)], how=how  # type: ignore[list-item]
            )
    for w in (1.0, 0.5, 0.3):
        out[f"doclevel rrf wt={w}"] = lambda d, t, m, w=w: weighted_rrf(
            [([x for x, _ in document_level(d, m)], 1.0), ([x for x, _ in document_level(t, m)], w)]
        )
    for lo in (0.0, 0.2):
        for a in (0.5, 0.6, 0.7, 0.8, 0.9):
            out[f"tmm lo={lo} dense={a}"] = lambda d, t, m, a=a, lo=lo: theoretical_min_max(
                d, t, a, lo
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dump", type=Path)
    parser.add_argument("datasets", nargs="+", type=Path)
    args = parser.parse_args()
    sets: dict[str, tuple[Dataset, dict[str, str], dict[str, dict[str, Hits]]]] = {}
    for path in args.datasets:
        dump = json.loads((args.dump / f"{path.name}.json").read_text())
        doc_of = {c[0]: c[1] for c in dump["chunks"]}
        legs = {
            leg: {q: [(c, float(s)) for c, s in hits] for q, hits in per_query.items()}
            for leg, per_query in dump["legs"].items()
        }
        sets[path.name] = (load_dataset(path), doc_of, legs)

    def ndcg(fuse: Fuser, lexical: str) -> dict[str, float]:
        out = {}
        for name, (dataset, doc_of, legs) in sets.items():
            out[name] = statistics.fmean(
                ndcg_at_k(
                    documents(fuse(legs["semantic"][q], legs[lexical][q], doc_of), doc_of),
                    dataset.qrels[q],
                    10,
                )
                for q in dataset.queries
            )
        return out

    for lexical in ("fulltext:bm25", "fulltext:idf"):
        text = ndcg(lambda d, t, m: t, lexical)
        dense = ndcg(lambda d, t, m: d, lexical)
        for label, fuse in fusers().items():
            got = ndcg(fuse, lexical)
            margin = min(got[n] - max(text[n], dense[n]) for n in got)
            cells = "".join(f"{got[n]:>7.3f}" for n in got)
            print(f"{label} [{lexical}]".ljust(48) + cells + f"  {margin:+.3f}", flush=True)


if __name__ == "__main__":
    main()
