"""Fusing the ranked candidate lists of the retrieval legs.

`weighted_rrf` fuses ranks only. `convex` fuses scores: each leg's scores are normalised
(min-max or z-score over its own candidates) and combined with weights; an item a leg did not
return gets that leg's floor (0 after min-max, the lowest z-score). `lexical_weight` says how
much a query's wording calls for exact-term matching: identifiers, code, quoted phrases, or a
few bare terms weigh the lexical leg up; a plain question leaves it to the dense leg.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence
from typing import Literal, TypeVar

K = TypeVar("K", bound=Hashable)
Normalisation = Literal["minmax", "zscore"]


def weighted_rrf(
    rankings: Sequence[tuple[Sequence[K], float]], *, k: int = 60
) -> list[tuple[K, float]]:
    """Fuse `(ranked ids, weight)` lists: score(d) = sum of weight / (k + rank), rank from 1.

    Ties keep the order of first appearance (earlier lists first), so fusion is deterministic.
    """
    if k < 0:
        raise ValueError("k must be >= 0")
    scores: dict[K, float] = {}
    for ids, weight in rankings:
        if weight <= 0:
            continue
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    order = {item: position for position, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))


def normalise(
    scores: Sequence[float], how: Normalisation, *, population: int = 0
) -> tuple[list[float], float]:
    """The scores normalised, and the value an item missing from the list gets. With
    `population` (z-score only), the list is one of that many candidates, the ones it lacks
    scoring 0 (a lexical leg's: they matched no query word): a lone exact hit among 50
    stands 7 deviations out, not one."""
    if not scores:
        return [], 0.0
    if how == "zscore":
        missing = max(0, population - len(scores))
        count = len(scores) + missing
        # Plain float sums: statistics.pstdev's exact arithmetic cost 60 µs per leg.
        mean = math.fsum(scores) / count
        spread = math.sqrt(
            (math.fsum((s - mean) ** 2 for s in scores) + missing * mean * mean) / count
        )
        if spread <= 1e-12:
            # One hit (or all equal): a standard deviation above what the leg did not return.
            return [1.0] * len(scores), 0.0
        values = [(s - mean) / spread for s in scores]
        return values, (0.0 - mean) / spread if missing else min(values)
    low, high = min(scores), max(scores)
    if high - low <= 1e-12:
        return [1.0] * len(scores), 0.0
    return [(s - low) / (high - low) for s in scores], 0.0


def convex(
    legs: Sequence[tuple[Sequence[tuple[K, float]], float]],
    *,
    how: Normalisation = "minmax",
    populations: Sequence[int] = (),
) -> list[tuple[K, float]]:
    """Fuse `((id, score) best first, weight)` legs: sum of weight * normalised score, a leg
    that lacks an item contributing its floor. Ties keep the order of first appearance.
    `populations`: per leg, the candidates its scores are normalised among (`normalise`)."""
    normalised = []
    for index, (hits, weight) in enumerate(legs):
        population = populations[index] if index < len(populations) else 0
        values, floor = normalise([score for _, score in hits], how, population=population)
        normalised.append((hits, values, floor, max(weight, 0.0)))
    # Every item starts at the sum of the legs' floors; a leg that has it adds the difference.
    start = math.fsum(weight * floor for _, _, floor, weight in normalised)
    fused: dict[K, float] = {}
    for hits, values, floor, weight in normalised:
        for (item, _), value in zip(hits, values, strict=True):
            fused[item] = fused.get(item, start) + weight * (value - floor)
    order = {item: position for position, item in enumerate(fused)}
    return sorted(fused.items(), key=lambda pair: (-pair[1], order[pair[0]]))


def top_margin(scores: Sequence[float]) -> float:
    """How clearly a leg's best hit stands out: (s1 - s2) / s1 of its two best scores, 1 for a
    single positive hit, 0 for none (or a best score <= 0)."""
    ordered = sorted(scores, reverse=True)
    if not ordered or ordered[0] <= 0:
        return 0.0
    if len(ordered) == 1:
        return 1.0
    return max(ordered[0] - ordered[1], 0.0) / ordered[0]


def gated_share(share: float, confidence: float, *, full_at: float) -> float:
    """A leg's share scaled by its confidence: all of it from `full_at` up, less below."""
    if full_at <= 0:
        return share
    return share * min(1.0, max(confidence, 0.0) / full_at)


KEYWORD_MAX_WORDS = 6
_QUOTED = re.compile(r"\"[^\"]+\"|'[^']{2,}'|`[^`]+`")
_CODE = re.compile(
    r"\w+_\w+|__\w+__|\w+\(\)?|\b\w+\.\w+\b|(?:^|\s)--?[a-zA-Z][\w-]*|\b[a-z]+[A-Z]\w*|"
    r"[A-Z]{2,}[-_]?\d+|\w+-\d{2,}|[{}<>=$@#\\/]"
)
_QUESTION = re.compile(
    r"^(how|what|why|when|where|which|who|is|are|can|could|do|does|did|should|will|would|"
    r"i|my|i'm|i've|has|have)\b|\?\s*$",
    re.IGNORECASE,
)


def is_question(text: str) -> bool:
    """True when `text` reads as a question (a question word first, or a final "?")."""
    return _QUESTION.search(text.strip()) is not None


def lexical_weight(query: str, *, base: float, boosted: float) -> float:
    """The lexical leg's weight for `query`: `boosted` when it quotes a phrase, or reads like
    search terms (a few bare words, or identifiers and code, and no question); else `base`.
    A question that names an identifier is still a question: the dense leg reads it better."""
    text = query.strip()
    if _QUOTED.search(text):
        return boosted
    words = text.split()
    if is_question(text) or len(words) > KEYWORD_MAX_WORDS:
        return base
    if _CODE.search(text) or len(words) <= 3:
        return boosted
    return base


Fusion = Literal["rrf", "minmax", "zscore"]


def fuse_legs(
    query: str,
    vector_hits: Sequence[tuple[K, float]],
    text_hits: Sequence[tuple[K, float]],
    *,
    method: Fusion,
    vector_weight: float,
    fulltext_weight: float,
    rrf_k: int,
    adaptive_weight: float | None = None,
    lexical_confidence: float | None = None,
) -> list[K]:
    """The hybrid order of the legs' candidates: `vector_hits` as (id, cosine distance),
    `text_hits` as (id, rank), both best first. `rrf` fuses ranks; `minmax` and `zscore`
    fuse normalised scores (similarity = 1 - distance) with the weights taken as shares.
    With `adaptive_weight`, a query that reads like search terms or code (`lexical_weight`)
    gives the lexical leg that share instead. With `lexical_confidence`, score fusion scales
    the lexical share by the leg's confidence (`top_margin`, full from that margin up)."""
    total = vector_weight + fulltext_weight
    lexical = fulltext_weight / total if total > 0 else 0.0
    if lexical_confidence is not None and method != "rrf":
        margin = top_margin([score for _, score in text_hits])
        lexical = gated_share(lexical, margin, full_at=lexical_confidence)
    if adaptive_weight is not None:
        lexical = lexical_weight(query, base=lexical, boosted=max(lexical, adaptive_weight))
    if method == "rrf":
        dense, sparse = vector_weight, fulltext_weight
        if adaptive_weight is not None:
            dense, sparse = total * (1 - lexical), total * lexical
        rankings = [([i for i, _ in vector_hits], dense), ([i for i, _ in text_hits], sparse)]
        return [i for i, _ in weighted_rrf(rankings, k=rrf_k)]
    similarities = [(i, 1.0 - distance) for i, distance in vector_hits]
    # The lexical leg's scores are normalised among as many candidates as the dense leg
    # returned (z-score): the chunks it lacks matched none of the query's words.
    fused = convex(
        [(similarities, 1 - lexical), (text_hits, lexical)],
        how=method,
        populations=(0, len(vector_hits)),
    )
    return [i for i, _ in fused]
