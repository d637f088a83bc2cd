"""The soak's repeat phase (issue 18: TTLs chosen from measured hits). After the distinct-query
load (and after its memory is measured), searches repeat texts the soak already sent, drawn
with a Zipf-like popularity (weight 1/rank over a shuffled history, so popularity does not
follow age): the cache counters per kind (`lorebase_cache_requests_total`) and the ages of the
entries the hits returned (`lorebase_cache_hit_age_seconds`) are read before and after.
"""

from __future__ import annotations

import random
import re
from typing import Any

import httpx

from lorebase.bench.load import Request, query_request

_SAMPLE = re.compile(
    r"^(lorebase_cache_(?:requests_total|hit_age_seconds_bucket))\{([^}]*)\} (\S+)$"
)


def zipf_texts(history: list[str], count: int, *, seed: int = 18) -> list[str]:
    """`count` texts drawn from `history` with weight 1/rank (rank over a shuffled history)."""
    rng = random.Random(seed)
    ranked = list(history)
    rng.shuffle(ranked)
    weights = [1.0 / (rank + 1) for rank in range(len(ranked))]
    return rng.choices(ranked, weights=weights, k=count)


def cache_counters(url: str, scrapes: int = 8) -> dict[str, float]:
    """The cache counters of /metrics summed over the workers that answered `scrapes` scrapes
    (each worker counts its own; between loads a worker's counts do not change)."""
    seen: dict[tuple[tuple[str, float], ...], dict[str, float]] = {}
    for _ in range(scrapes):
        sample: dict[str, float] = {}
        for line in httpx.get(url + "/metrics", timeout=10.0).text.splitlines():
            match = _SAMPLE.match(line)
            if match:
                sample[f"{match.group(1)}{{{match.group(2)}}}"] = float(match.group(3))
        seen[tuple(sorted(sample.items()))] = sample
    total: dict[str, float] = {}
    for sample in seen.values():
        for name, value in sample.items():
            total[name] = total.get(name, 0.0) + value
    return total


def hit_report(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Per kind: hits, misses, hit rate, and the share of hits older than each bucket bound
    (what a TTL of that many seconds would have lost), between two `cache_counters`."""
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    kinds: dict[str, Any] = {}
    for name, value in delta.items():
        labels = dict(re.findall(r'(\w+)="([^"]*)"', name.split("{", 1)[1]))
        entry = kinds.setdefault(labels["kind"], {"hit": 0.0, "miss": 0.0, "ages": {}})
        if name.startswith("lorebase_cache_requests_total"):
            entry[labels["result"]] += value
        else:
            entry["ages"][labels["le"]] = value
    for entry in kinds.values():
        total = entry["hit"] + entry["miss"]
        entry["hit_rate"] = round(entry["hit"] / total, 3) if total else 0.0
        ages = entry.pop("ages")
        hits = ages.get("+Inf", 0.0)
        entry["share_of_hits_older_than_s"] = {
            le: round(1 - n / hits, 3) for le, n in ages.items() if le != "+Inf" and hits
        }
    return kinds


def repeat_requests(project_id: str, texts: list[str]) -> list[Request]:
    """Searches over `texts`: semantic, semantic, hybrid, hybrid, answer, in turn (the soak's
    search mix)."""
    kinds = ((False, False), (False, False), (True, False), (True, False), (True, True))
    requests = []
    for i, text in enumerate(texts):
        hybrid, answer = kinds[i % len(kinds)]
        requests.append(query_request(project_id, text, hybrid=hybrid, answer=answer))
    return requests
