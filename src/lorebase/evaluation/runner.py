"""`lorebase eval`: retrieval quality and latency on a BEIR-format dataset.

The corpus is ingested into a temporary project of a temporary user through the real
pipeline (extract, chunk, embed, store), every query runs in each mode through the search
service, and chunk results are mapped back to corpus documents (a document's rank is that of
its best chunk). With `answers`, every query is also asked through the query service with
`use_agentic_rag` and the configured answerer. Metrics follow trec_eval (see `metrics`).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.auth.schemas import UserCreate
from lorebase.auth.service import register_user
from lorebase.context import AppContext
from lorebase.evaluation.answers import answer_metrics
from lorebase.evaluation.dataset import Dataset, Ingested, load_dataset
from lorebase.evaluation.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k
from lorebase.evaluation.report import EvalReport, ModeResult
from lorebase.knowledge.pipeline import (
    NullProgress,
    Source,
    SourceDocument,
    sha256,
    upsert_source_document,
)
from lorebase.projects.schemas import ProjectCreate
from lorebase.projects.service import create_project, delete_project, get_project_for
from lorebase.retrieval.search import SearchMode, count_chunks, search, target_of
from lorebase.timing import sample_ms

# (label, search mode, re-rank)
MODES: dict[str, tuple[SearchMode, bool]] = {
    "semantic": ("semantic", False),
    "fulltext": ("fulltext", False),
    "hybrid": ("hybrid", False),
    "hybrid+rerank": ("hybrid", True),
}
DEPTH = 100  # results per query: enough for recall@100


async def _temporary_owner(ctx: AppContext) -> Principal:
    name = f"lorebase-eval-{uuid.uuid4().hex[:8]}"
    user = await register_user(
        ctx=ctx,
        data=UserCreate(username=name, password=SecretStr(uuid.uuid4().hex * 2)),
        by_operator=True,
    )
    return Principal(user_id=user.id, username=user.username)


def _document_text(title: str, text: str) -> str:
    return f"# {title}\n\n{text}" if title else text


async def _delete_project(ctx: AppContext, principal: Principal, project_id: uuid.UUID) -> None:
    async with ctx.db.transaction() as conn:
        await delete_project(conn, principal=principal, project_id=project_id)


async def ingest_dataset(
    ctx: AppContext, *, dataset: Dataset, name: str, say: Callable[[str], None]
) -> Ingested:
    """A temporary owner and project holding the corpus, ingested through the pipeline
    (one markdown document per corpus entry, its title as the heading)."""
    principal = await _temporary_owner(ctx)
    async with ctx.db.transaction() as conn:
        project = await create_project(
            conn, principal=principal, data=ProjectCreate(name=f"eval {name}")
        )
    say(f"ingesting {len(dataset.corpus)} documents")
    started = time.perf_counter()
    doc_of: dict[uuid.UUID, str] = {}
    try:
        for corpus_id, (title, text) in dataset.corpus.items():
            body = _document_text(title, text)
            document_id, _ = await upsert_source_document(
                ctx,
                item=SourceDocument(
                    project_id=project.id,
                    source_uri=f"beir:{corpus_id}",
                    name=corpus_id,
                    type="markdown",
                    source=Source(format="markdown", text=body, meta={"source": corpus_id}),
                    content_hash=sha256(body),
                    size_bytes=len(body.encode()),
                    mime_type="text/markdown",
                    tags=[],
                    metadata={"beir_id": corpus_id},
                    created_by=principal.user_id,
                ),
                progress=NullProgress(),
            )
            doc_of[document_id] = corpus_id
        chunks = await count_chunks(ctx, project_id=project.id)
    except BaseException:
        await _delete_project(ctx, principal, project.id)
        raise
    return Ingested(principal, project.id, doc_of, chunks, time.perf_counter() - started)


async def run_modes(
    ctx: AppContext,
    *,
    ingested: Ingested,
    dataset: Dataset,
    modes: Sequence[str],
    say: Callable[[str], None],
    answers: bool = False,
) -> list[ModeResult]:
    """Every query in every mode, with the current `ctx.settings`; with `answers`, the
    answer metrics of every mode except full-text (answers come from semantic or hybrid)."""
    access = await get_project_for(
        ctx.db,
        principal=ingested.principal,
        project_id=ingested.project_id,
        permission=Permission.READ,
    )
    target = target_of(access)
    results: list[ModeResult] = []
    for label in modes:
        mode, rerank = MODES[label]
        say(f"running {len(dataset.queries)} queries: {label}")
        result = await _run_mode(ctx, label, mode, rerank, target, dataset, ingested.doc_of)
        if answers and mode != "fulltext":
            say(f"asking {len(dataset.queries)} questions: {label}")
            result.answers = await answer_metrics(
                ctx, ingested=ingested, dataset=dataset, hybrid=mode == "hybrid", rerank=rerank
            )
        results.append(result)
    return results


def settings_summary(ctx: AppContext) -> dict[str, Any]:
    s = ctx.settings
    return {
        "retrieval_candidates": s.retrieval_candidates,
        "use_hybrid_search": s.use_hybrid_search,
        "hybrid_fusion": s.hybrid_fusion,
        "hybrid_keyword_fulltext_share": s.hybrid_keyword_fulltext_share,
        "rrf_k": s.rrf_k,
        "hybrid_vector_weight": s.hybrid_vector_weight,
        "hybrid_fulltext_weight": s.hybrid_fulltext_weight,
        "fulltext_operator": s.fulltext_operator,
        "fulltext_rank": s.fulltext_rank,
        "rerank_candidates": s.rerank_candidates,
        "hnsw_ef_search": s.hnsw_ef_search,
        "reranker": s.reranker,
        "llm_provider": s.llm_provider,
        "rerank_model_path": str(s.rerank_model_path) if s.rerank_model_path else None,
    }


async def evaluate(
    ctx: AppContext,
    *,
    dataset_dir: Path,
    modes: Sequence[str] = tuple(MODES),
    on_progress: Callable[[str], None] | None = None,
    answers: bool = False,
) -> EvalReport:
    """Ingest the dataset into a temporary project, run every query in every mode, report
    metrics and latency; the project is deleted afterwards."""
    say = on_progress or (lambda _message: None)
    dataset = load_dataset(dataset_dir)
    ingested = await ingest_dataset(ctx, dataset=dataset, name=dataset_dir.name, say=say)
    try:
        results = await run_modes(
            ctx, ingested=ingested, dataset=dataset, modes=modes, say=say, answers=answers
        )
    finally:
        await _delete_project(ctx, ingested.principal, ingested.project_id)
    return EvalReport(
        dataset=str(dataset_dir),
        documents=len(dataset.corpus),
        chunks=ingested.chunks,
        queries=len(dataset.queries),
        ingest_seconds=round(ingested.seconds, 2),
        embedding_model=ctx.embedder.model_id,
        settings=settings_summary(ctx),
        modes=results,
    )


async def _run_mode(
    ctx: AppContext,
    label: str,
    mode: SearchMode,
    rerank: bool,
    target: Any,
    dataset: Dataset,
    doc_of: dict[uuid.UUID, str],
) -> ModeResult:
    latencies: list[float] = []
    ndcg: list[float] = []
    r10: list[float] = []
    r100: list[float] = []
    mrr: list[float] = []
    warnings: list[str] = []
    by_kind: dict[str, list[float]] = {}
    for qid, text in dataset.queries.items():
        with sample_ms(latencies):
            outcome = await search(
                ctx,
                target=target,
                query_text=text,
                mode=mode,
                top_k=DEPTH,
                use_re_ranking=rerank,
                use_query_cache=False,
            )
        warnings.extend(w for w in outcome.warnings if w not in warnings)
        ranked: list[str] = []
        for result in outcome.results:
            corpus_id = doc_of.get(result.document_id)
            if corpus_id is not None and corpus_id not in ranked:
                ranked.append(corpus_id)
        relevant = dataset.qrels[qid]
        ndcg.append(ndcg_at_k(ranked, relevant, 10))
        by_kind.setdefault(dataset.kinds.get(qid, "natural"), []).append(ndcg[-1])
        r10.append(recall_at_k(ranked, relevant, 10))
        r100.append(recall_at_k(ranked, relevant, 100))
        mrr.append(mrr_at_k(ranked, relevant, 10))
    return ModeResult(
        mode=label,
        queries=len(latencies),
        ndcg_at_10=round(statistics.fmean(ndcg), 4),
        recall_at_10=round(statistics.fmean(r10), 4),
        recall_at_100=round(statistics.fmean(r100), 4),
        mrr_at_10=round(statistics.fmean(mrr), 4),
        p50_ms=round(percentile(latencies, 50), 1),
        p95_ms=round(percentile(latencies, 95), 1),
        ndcg_at_10_by_kind={k: round(statistics.fmean(v), 4) for k, v in sorted(by_kind.items())},
        queries_by_kind={k: len(v) for k, v in sorted(by_kind.items())},
        warnings=warnings,
    )
