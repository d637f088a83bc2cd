"""The full-text leg's analysis and scoring measured offline, over the chunks that
`bench/eval_sweep.py --dump DIR` wrote (no ingestion, no embedding): each analysis (Python
tokenisers, or PostgreSQL text-search configurations run through `to_tsvector` on a scratch
database) is scored with BM25 per chunk, per document, or both, and compared with rank_bm25's
BM25Okapi on the benchmark's tokens.

    LOREBASE_DATA_DIR=/tmp/lb-offline .venv/bin/python bench/lexical_offline.py /tmp/dump \\
        eval/curl-faq eval/fetchmail-faq eval/pyweb-faq eval/zsh-faq tests/data/pydoc-qa
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import snowballstemmer  # type: ignore[import-untyped]

from lorebase.evaluation.dataset import Dataset, load_dataset
from lorebase.evaluation.metrics import mrr_at_k, ndcg_at_k, recall_at_k

_STEM = snowballstemmer.stemmer("english")
_WORD = re.compile(r"\w+")
_ALNUM = re.compile(r"[^\W_]+")
_REF_STOP_WORDS = (
    "a an and are as at be by for from has have how i if in is it of on or that the this to "
    "was what when where which who why will with do does can my you your not"
)
REF_STOPS = frozenset(_REF_STOP_WORDS.split())

# Every word of PostgreSQL's english.stop (those ts_lexize drops are its stop words).
_ENGLISH_STOP_WORDS = (
    "i me my myself we our ours ourselves you your yours yourself yourselves he him his "
    "himself she her hers herself it its itself they them their theirs themselves what "
    "which who whom this that these those am is are was were be been being have has had "
    "having do does did doing a an the and but if or because as until while of at by for "
    "with about against between into through during before after above below to from up "
    "down in out on off over under again further then once here there when where why how "
    "all any both each few more most other some such no nor not only own same so than too "
    "very s t can will just don should now"
)
_ENGLISH_STOP_CANDIDATES = frozenset(_ENGLISH_STOP_WORDS.split())

Analyzer = Callable[[Sequence[str]], list[list[str]]]


def py_analyzer(pattern: re.Pattern[str], stops: frozenset[str]) -> Analyzer:
    def run(texts: Sequence[str]) -> list[list[str]]:
        return [
            list(_STEM.stemWords([w for w in pattern.findall(t.lower()) if w not in stops]))
            for t in texts
        ]

    return run


def pg_analyzer(conn: psycopg.Connection[Any], expression: str) -> Analyzer:
    """Tokens as PostgreSQL indexes them: `expression` over `t` (e.g. to_tsvector('english',
    t)); each lexeme repeated as many times as it has positions."""

    def run(texts: Sequence[str]) -> list[list[str]]:
        rows = conn.execute(
            f"""SELECT d.i, l.lexeme, coalesce(array_length(l.positions, 1), 1) AS tf
                FROM unnest(%s::text[]) WITH ORDINALITY AS d(t, i),
                     LATERAL unnest({expression}) AS l""",  # noqa: S608 (the operator's own SQL)
            (list(texts),),
        ).fetchall()
        out: list[list[str]] = [[] for _ in texts]
        for i, lexeme, tf in rows:
            out[i - 1] += [lexeme] * tf
        return out

    return run


@dataclass(frozen=True)
class Scoring:
    """BM25's free choices. The product's: k1 1.2, idf ln(1 + (N - df + .5) / (df + .5)),
    length in distinct lexemes, distinct query lexemes. rank_bm25's BM25Okapi: k1 1.5, idf
    ln((N - df + .5) / (df + .5)) floored at a quarter of the average, length in tokens,
    query tokens with repetition."""

    k1: float = 1.2
    okapi_idf: bool = False
    token_length: bool = False
    repeat_query: bool = False
    b: float = 0.75


SCORINGS = {
    "product": Scoring(),
    "k1=1.5": Scoring(k1=1.5),
    "len=tokens": Scoring(token_length=True),
    "idf=okapi": Scoring(okapi_idf=True),
    "q=repeat": Scoring(repeat_query=True),
    "okapi": Scoring(1.5, True, True, True),
}


class Bm25:
    def __init__(self, docs: list[list[str]], scoring: Scoring) -> None:
        self.s = scoring
        self.tf = [Counter(d) for d in docs]
        self.len = [len(d) if scoring.token_length else len(set(d)) for d in docs]
        self.avg = (sum(self.len) / len(docs)) if docs else 1.0
        df: Counter[str] = Counter()
        for c in self.tf:
            df.update(c.keys())
        n = len(docs)
        self.idf: dict[str, float] = {}
        if scoring.okapi_idf:
            raw = {w: math.log(n - f + 0.5) - math.log(f + 0.5) for w, f in df.items()}
            floor = 0.25 * (sum(raw.values()) / len(raw)) if raw else 0.0
            self.idf = {w: (v if v >= 0 else floor) for w, v in raw.items()}
        else:
            self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in df.items()}
        self.k1 = scoring.k1
        self.b = scoring.b

    def scores(self, query: list[str]) -> list[float]:
        terms = query if self.s.repeat_query else list(dict.fromkeys(query))
        out = []
        for tf, length in zip(self.tf, self.len, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / max(self.avg, 1.0))
            s = 0.0
            for w in terms:
                f = tf.get(w, 0)
                if f:
                    s += self.idf[w] * f * (self.k1 + 1) / (f + norm)
            out.append(s)
        return out


def metrics(ranked: dict[str, list[str]], dataset: Dataset) -> tuple[float, float, float]:
    n, r, m = [], [], []
    for qid, docs in ranked.items():
        rel = dataset.qrels[qid]
        n.append(ndcg_at_k(docs, rel, 10))
        r.append(recall_at_k(docs, rel, 10))
        m.append(mrr_at_k(docs, rel, 10))
    return statistics.fmean(n), statistics.fmean(r), statistics.fmean(m)


def top_docs(scored: Iterable[tuple[str, float]], depth: int = 100) -> list[str]:
    best: dict[str, float] = {}
    for doc, s in scored:
        if s > 0 and s > best.get(doc, 0.0):
            best[doc] = s
    return sorted(best, key=lambda d: (-best[d], d))[:depth]


def evaluate(
    dataset: Dataset,
    chunks: list[tuple[str, str, str]],
    analyze: Analyzer,
    query_analyze: Analyzer,
    scoring: Scoring,
) -> dict[str, tuple[float, float, float]]:
    """nDCG/R/MRR@10 of: chunk-level BM25 (a document ranks as its best chunk), document-level
    BM25 (the document's chunks concatenated), and mixes of the two."""
    chunk_tokens = analyze([c[2] for c in chunks])
    docs_of = [c[1] for c in chunks]
    by_doc: dict[str, list[str]] = defaultdict(list)
    for doc, toks in zip(docs_of, chunk_tokens, strict=True):
        by_doc[doc] += toks
    doc_ids = list(by_doc)
    chunk_index = Bm25(chunk_tokens, scoring)
    doc_index = Bm25([by_doc[d] for d in doc_ids], scoring)
    qids = list(dataset.queries)
    q_tokens = dict(zip(qids, query_analyze([dataset.queries[q] for q in qids]), strict=True))
    variants: dict[str, dict[str, list[str]]] = defaultdict(dict)
    for q in qids:
        cs = chunk_index.scores(q_tokens[q])
        ds = dict(zip(doc_ids, doc_index.scores(q_tokens[q]), strict=True))
        variants["chunk"][q] = top_docs(zip(docs_of, cs, strict=True))
        variants["document"][q] = top_docs(ds.items())
        for mix in (0.3, 0.5):
            variants[f"chunk+{mix}*document"][q] = top_docs(
                (d, s + mix * ds[d]) for d, s in zip(docs_of, cs, strict=True)
            )
    return {name: metrics(ranked, dataset) for name, ranked in variants.items()}


def without(analyze: Analyzer, stops: Iterable[str]) -> Analyzer:
    """`analyze`, less the lexemes of `stops` (a query-side stop list over an index that
    keeps every word)."""
    dropped = {x for toks in analyze(sorted(stops)) for x in toks}

    def run(texts: Sequence[str]) -> list[list[str]]:
        return [[x for x in toks if x not in dropped] for toks in analyze(texts)]

    return run


def pg_stop_words(conn: psycopg.Connection[Any]) -> frozenset[str]:
    """PostgreSQL's english stop words (those its english configuration drops)."""
    rows = conn.execute(
        "SELECT w FROM unnest(%s::text[]) w WHERE ts_lexize('english_stem', w) = '{}'",
        (sorted(_ENGLISH_STOP_CANDIDATES),),
    ).fetchall()
    return frozenset(r[0] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dump", type=Path)
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--dsn", required=True, help="a scratch PostgreSQL database")
    parser.add_argument("--setup", type=Path, help="SQL creating the configurations to try")
    parser.add_argument("--pg", action="append", default=[], help="name=SQL over t")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--scoring", dest="scorings", action="append", default=[])
    args = parser.parse_args()
    conn = psycopg.connect(args.dsn, autocommit=True)
    if args.setup is not None:
        conn.execute(args.setup.read_text())
    analyzers: dict[str, Analyzer] = {
        "py \\w+ ref-stops": py_analyzer(_WORD, REF_STOPS),
        "py \\w+ no-stops": py_analyzer(_WORD, frozenset()),
        "py [^\\W_]+ ref-stops": py_analyzer(_ALNUM, REF_STOPS),
        "py [^\\W_]+ pg-stops": py_analyzer(_ALNUM, _ENGLISH_STOP_CANDIDATES),
    }
    queries: dict[str, Analyzer] = {}
    for spec in args.pg:
        name, expression = spec.split("=", 1)
        analyzers[f"pg {name}"] = pg_analyzer(conn, expression)
        if "nostop" in name:
            # The same index, the query's stop words dropped (reference's 40, PostgreSQL's).
            for label, stops in (("ref", REF_STOPS), ("pg", pg_stop_words(conn))):
                analyzers[f"pg {name} q-{label}"] = analyzers[f"pg {name}"]
                queries[f"pg {name} q-{label}"] = without(analyzers[f"pg {name}"], stops)
    rows = []
    for path in args.datasets:
        dataset = load_dataset(path)
        dump = json.loads((args.dump / f"{path.name}.json").read_text())
        chunks = [(c[0], c[1], c[2]) for c in dump["chunks"]]
        for name, analyze in analyzers.items():
            query_analyze = queries.get(name, analyze)
            chunk_tokens = analyze([c[2] for c in chunks])
            fixed: Analyzer = lambda texts, done=chunk_tokens: done  # noqa: E731
            for scoring, params in SCORINGS.items():
                if args.scorings and scoring not in args.scorings:
                    continue
                for level, (n, r, m) in evaluate(
                    dataset, chunks, fixed, query_analyze, params
                ).items():
                    row = {
                        "dataset": path.name,
                        "analysis": name,
                        "scoring": scoring,
                        "level": level,
                        "ndcg_at_10": round(n, 4),
                        "recall_at_10": round(r, 4),
                        "mrr_at_10": round(m, 4),
                    }
                    rows.append(row)
                    print(
                        f"{path.name:<14} {name:<34} {scoring:<11} {level:<20} "
                        f"{n:.3f} / {r:.3f} / {m:.3f}",
                        flush=True,
                    )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
