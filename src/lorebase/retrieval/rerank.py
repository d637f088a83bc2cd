"""Re-ranking: a cross-encoder from the provider registry, or listwise through the chat model.

Neither configured means the results come back in fused order with a warning (SPEC). A
reranker that fails or answers something unusable never fails the query: the order is kept
and the response says why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lorebase.providers.base import (
    BadResponse,
    ChatModel,
    Message,
    ProviderError,
    Reranker,
    format_sources,
)
from lorebase.providers.registry import Registry
from lorebase.settings import Settings

NO_RERANKER = (
    "re-ranking skipped: no reranker is configured (set RERANK_MODEL_PATH to a cross-encoder "
    "ONNX file, or LLM_PROVIDER to a generative model); results are in retrieval order"
)
_RANK_ITEM = re.compile(r"\[(\d{1,3})\]|\b(\d{1,3})\b")

RERANK_INSTRUCTIONS = (
    "Rank the numbered sources by how well they answer the question, most relevant first. "
    "Reply with the source numbers only, in square brackets, separated by '>', for example: "
    "[2] > [3] > [1]. Include every source exactly once and write nothing else."
)


def rerank_messages(question: str, passages: Sequence[str]) -> list[Message]:
    """The listwise re-ranking prompt over the providers' numbered-sources layout."""
    return format_sources(question, passages, instructions=RERANK_INSTRUCTIONS)


def is_generative(llm: ChatModel | None) -> bool:
    """A model that writes text; the model-free `extractive` default (`generative = False`)
    only quotes passages and cannot judge relevance."""
    return llm is not None and bool(getattr(llm, "generative", True))


class ListwiseLLMReranker:
    """Asks the chat model for a ranking of all passages at once (RankGPT-style)."""

    def __init__(self, llm: ChatModel, *, max_passage_chars: int = 1200) -> None:
        self._llm = llm
        self._max_chars = max_passage_chars

    @property
    def model_id(self) -> str:
        return f"llm:{self._llm.model_id}"

    async def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Scores from the ranking: n for the first passage named down to 1 for the last."""
        if not passages:
            return []
        clipped = [p if len(p) <= self._max_chars else p[: self._max_chars] for p in passages]
        completion = await self._llm.complete(
            rerank_messages(query, clipped), max_tokens=8 * len(passages) + 16
        )
        order = parse_ranking(completion.text, len(passages))
        n = len(passages)
        scores = [0.0] * n
        for position, index in enumerate(order):
            scores[index] = float(n - position) / n
        return scores


def parse_ranking(text: str, count: int) -> list[int]:
    """0-based indices in the order the model named them, completed with the ones it left out
    (in their original order). Raises BadResponse when nothing usable was named."""
    items = _RANK_ITEM.findall(text)
    # Bracketed numbers are the requested format; bare ones only count when there are none.
    bracketed_only = any(bracketed for bracketed, _ in items)
    named: list[int] = []
    for bracketed, bare in items:
        if bracketed_only and not bracketed:
            continue
        number = int(bracketed or bare)
        if 1 <= number <= count and number - 1 not in named:
            named.append(number - 1)
    if not named:
        raise BadResponse("the model's ranking named no valid source", provider="llm-rerank")
    return named + [i for i in range(count) if i not in named]


@dataclass
class RerankOutcome:
    """Indices of the passages in their new order, a score per passage (by original index)."""

    order: list[int]
    scores: list[float | None]
    model_id: str | None = None
    warnings: list[str] = field(default_factory=list)
    reranked: bool = False


def choose_reranker(
    *, settings: Settings, registry: Registry, llm: ChatModel | None
) -> Reranker | None:
    """The configured reranker, or None when there is none to use."""
    choice = settings.reranker
    if choice == "none":
        return None
    if choice == "cross-encoder" or (choice == "auto" and settings.rerank_model_path is not None):
        return registry.get_reranker("cross-encoder", settings)
    if llm is not None and (choice == "llm" or is_generative(llm)):
        return ListwiseLLMReranker(llm)
    return None


def reranker_id(*, settings: Settings, registry: Registry, llm: ChatModel | None) -> str:
    """What would re-rank (part of the answer-cache key), without loading a model."""
    if settings.reranker == "none":
        return "none"
    if settings.reranker == "cross-encoder" or (
        settings.reranker == "auto" and settings.rerank_model_path is not None
    ):
        return f"cross-encoder:{settings.rerank_model_path}"
    if llm is not None and (settings.reranker == "llm" or is_generative(llm)):
        return f"llm:{llm.model_id}"
    return "none"


async def rerank(
    *, reranker: Reranker | None, query: str, passages: Sequence[str]
) -> RerankOutcome:
    """Re-order `passages` by the reranker's scores (stable for ties)."""
    keep = RerankOutcome(order=list(range(len(passages))), scores=[None] * len(passages))
    if reranker is None:
        keep.warnings.append(NO_RERANKER)
        return keep
    keep.model_id = reranker.model_id
    if not passages:
        keep.reranked = True
        return keep
    try:
        scores = await reranker.score(query, passages)
    except BadResponse as exc:
        keep.warnings.append(f"re-ranking skipped: {exc}; results are in retrieval order")
        return keep
    except ProviderError as exc:
        keep.warnings.append(
            f"re-ranking skipped: reranker unavailable ({exc}); results are in retrieval order"
        )
        return keep
    if len(scores) != len(passages):
        keep.warnings.append("re-ranking skipped: the reranker returned a wrong number of scores")
        return keep
    order = sorted(range(len(passages)), key=lambda i: (-scores[i], i))
    return RerankOutcome(
        order=order,
        scores=[float(s) for s in scores],
        model_id=reranker.model_id,
        reranked=True,
    )
