"""What `lorebase eval` reports: per mode, ranking metrics (overall and by query kind) and
latency; with `--answers`, how the answerer did on the same questions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class AnswerMetrics:
    """Asked with `use_agentic_rag`: the share answered (not "no answer"), the share whose
    citations point at a relevant document, the share whose rank-1 result was relevant (what
    the answerer could at least find), and "no answer" among those."""

    queries: int
    answered: float
    cites_relevant: float
    top1_relevant: float
    no_answer_when_top1_relevant: float
    p50_ms: float


@dataclass
class ModeResult:
    mode: str
    queries: int
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float
    p50_ms: float
    p95_ms: float
    ndcg_at_10_by_kind: dict[str, float] = field(default_factory=dict)
    queries_by_kind: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    answers: AnswerMetrics | None = None


@dataclass
class EvalReport:
    dataset: str
    documents: int
    chunks: int
    queries: int
    ingest_seconds: float
    embedding_model: str
    settings: dict[str, Any]
    modes: list[ModeResult]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        kinds = sorted({k for m in self.modes for k in m.ndcg_at_10_by_kind})
        counts = {k: max(m.queries_by_kind.get(k, 0) for m in self.modes) for k in kinds}
        header = (
            f"{'mode':<15}{'nDCG@10':>9}{'R@10':>8}{'R@100':>8}{'MRR@10':>8}"
            f"{'p50 ms':>9}{'p95 ms':>9}"
            + "".join(f"{f'nDCG@10 {k} ({counts[k]})':>24}" for k in kinds)
        )
        lines = [header, "-" * len(header)]
        for m in self.modes:
            lines.append(
                f"{m.mode:<15}{m.ndcg_at_10:>9.3f}{m.recall_at_10:>8.3f}{m.recall_at_100:>8.3f}"
                f"{m.mrr_at_10:>8.3f}{m.p50_ms:>9.1f}{m.p95_ms:>9.1f}"
                + "".join(f"{m.ndcg_at_10_by_kind.get(k, 0.0):>24.3f}" for k in kinds)
            )
        answered = [m for m in self.modes if m.answers is not None]
        if answered:
            lines += [
                "",
                f"{'answers':<15}{'answered':>10}{'cites rel':>11}{'rank1 rel':>11}"
                f"{'no-ans|rank1 rel':>18}{'p50 ms':>9}",
            ]
            for m in answered:
                a = m.answers
                assert a is not None
                lines.append(
                    f"{m.mode:<15}{a.answered:>10.3f}{a.cites_relevant:>11.3f}"
                    f"{a.top1_relevant:>11.3f}{a.no_answer_when_top1_relevant:>18.3f}"
                    f"{a.p50_ms:>9.1f}"
                )
        return "\n".join(lines)
