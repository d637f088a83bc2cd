"""BEIR-format datasets: `corpus.jsonl`, `queries.jsonl`, `qrels/test.tsv`; and which queries
are keyword-like (identifiers, a few bare terms) rather than natural-language questions."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lorebase.auth.principal import Principal

_QUESTION_WORD = re.compile(
    r"^(how|what|why|when|where|which|who|whom|whose|is|are|can|could|do|does|did|should|"
    r"will|would|may|might|i|my|i'm|i've|is there|has|have)\b",
    re.IGNORECASE,
)
_IDENTIFIER = re.compile(r"\w+_\w*|__\w+|\w+\(\)|\w+\.\w+\w|--?\w[\w-]*|[a-z]+[A-Z]\w*")
KEYWORD_MAX_WORDS = 4


def query_kind(text: str) -> str:
    """`keyword` for a query that reads like search terms (an identifier, or a few words
    that are no question or sentence), else `natural`."""
    words = text.split()
    if text.rstrip().endswith("?") or _QUESTION_WORD.match(text.strip()):
        return "natural"
    if len(words) <= KEYWORD_MAX_WORDS or _IDENTIFIER.search(text):
        return "keyword"
    return "natural"


@dataclass(frozen=True)
class Dataset:
    corpus: dict[str, tuple[str, str]]  # id -> (title, text)
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    kinds: dict[str, str] = field(default_factory=dict)  # query id -> keyword | natural


@dataclass
class Ingested:
    """A dataset's corpus as ingested into a temporary project of a temporary user."""

    principal: Principal
    project_id: uuid.UUID
    doc_of: dict[uuid.UUID, str]  # document id -> corpus id
    chunks: int
    seconds: float


def _rows(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def load_dataset(path: Path) -> Dataset:
    """Read a BEIR dataset; a query's kind is its `metadata.kind`, else `query_kind`."""
    corpus = {
        str(row["_id"]): (str(row.get("title") or ""), str(row["text"]))
        for row in _rows(path / "corpus.jsonl")
    }
    queries: dict[str, str] = {}
    kinds: dict[str, str] = {}
    for row in _rows(path / "queries.jsonl"):
        qid, text = str(row["_id"]), str(row["text"])
        queries[qid] = text
        metadata = row.get("metadata")
        kind = metadata.get("kind") if isinstance(metadata, dict) else None
        kinds[qid] = kind if isinstance(kind, str) else query_kind(text)
    qrels: dict[str, dict[str, int]] = {}
    with (path / "qrels" / "test.tsv").open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            parts = line.rstrip("\n").split("\t")
            if number == 0 and parts[0] == "query-id":
                continue
            if len(parts) >= 3 and int(parts[2]) > 0:
                qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    # Only judged queries count (BEIR convention).
    queries = {qid: text for qid, text in queries.items() if qid in qrels}
    return Dataset(corpus=corpus, queries=queries, qrels=qrels, kinds=kinds)
