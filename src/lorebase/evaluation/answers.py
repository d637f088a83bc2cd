"""Answer metrics: every query asked through the query service with `use_agentic_rag`, its
answer and citations judged against the qrels."""

from __future__ import annotations

from lorebase.answering.prompts import NO_ANSWER
from lorebase.answering.service import run_query
from lorebase.context import AppContext
from lorebase.evaluation.dataset import Dataset, Ingested
from lorebase.evaluation.metrics import percentile
from lorebase.evaluation.report import AnswerMetrics
from lorebase.providers.extractive import NO_ANSWER as EXTRACTIVE_NO_ANSWER
from lorebase.retrieval.schemas import QueryCreate
from lorebase.timing import sample_ms

TOP_K = 10


def _is_no_answer(text: str | None) -> bool:
    return text is None or text.strip() in ("", NO_ANSWER, EXTRACTIVE_NO_ANSWER)


async def answer_metrics(
    ctx: AppContext, *, ingested: Ingested, dataset: Dataset, hybrid: bool, rerank: bool
) -> AnswerMetrics:
    """Ask every query (answer cache bypassed by a fresh project per run) and judge it."""
    answered = cites = top1 = missed = 0
    latencies: list[float] = []
    doc_of = ingested.doc_of
    for qid, text in dataset.queries.items():
        query = QueryCreate(
            project_id=ingested.project_id,
            query_text=text,
            top_k=TOP_K,
            use_hybrid_search=hybrid,
            use_re_ranking=rerank,
            use_agentic_rag=True,
        )
        with sample_ms(latencies):
            response = await run_query(ctx=ctx, principal=ingested.principal, query=query)
        relevant = dataset.qrels[qid]
        document_of = {r.id: doc_of.get(r.document_id) for r in response.results}
        first_relevant = bool(response.results) and (
            doc_of.get(response.results[0].document_id) in relevant
        )
        no_answer = _is_no_answer(response.synthesized_answer)
        answered += not no_answer
        top1 += first_relevant
        missed += first_relevant and no_answer
        cites += any(document_of.get(c.result_id) in relevant for c in response.citations)
    n = len(dataset.queries) or 1
    return AnswerMetrics(
        queries=len(dataset.queries),
        answered=round(answered / n, 4),
        cites_relevant=round(cites / n, 4),
        top1_relevant=round(top1 / n, 4),
        no_answer_when_top1_relevant=round(missed / top1, 4) if top1 else 0.0,
        p50_ms=round(percentile(latencies, 50), 1) if latencies else 0.0,
    )
