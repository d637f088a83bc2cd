"""The soak's repeat phase (texts drawn by popularity, hit rates and ages per cache kind) and
its growth bounds."""

from __future__ import annotations

from collections import Counter

from lorebase.bench.soak import growth_checks
from lorebase.bench.soak_ttl import hit_report, zipf_texts


def test_repeats_come_from_the_history_with_a_popular_head() -> None:
    history = [f"question {i}" for i in range(200)]
    drawn = zipf_texts(history, 5000)
    assert set(drawn) <= set(history)
    counts = Counter(drawn).most_common()
    assert counts[0][1] > 10 * counts[-1][1], "a few texts are asked far more often"
    assert zipf_texts(history, 50) == zipf_texts(history, 50), "seeded: runs compare"


def test_hit_report_gives_rates_and_what_a_shorter_ttl_would_lose() -> None:
    bucket = "lorebase_cache_hit_age_seconds_bucket"
    requests = "lorebase_cache_requests_total"
    before = {f'{requests}{{kind="answer",result="hit"}}': 5.0}
    after = {
        f'{requests}{{kind="answer",result="hit"}}': 45.0,
        f'{requests}{{kind="answer",result="miss"}}': 60.0,
        f'{bucket}{{kind="answer",le="60.0"}}': 10.0,
        f'{bucket}{{kind="answer",le="300.0"}}': 30.0,
        f'{bucket}{{kind="answer",le="+Inf"}}': 40.0,
    }
    (answer,) = hit_report(before, after).values()
    assert answer["hit"] == 40
    assert answer["miss"] == 60
    assert answer["hit_rate"] == 0.4
    # 30 of 40 hits were older than 60 s: a 60 s TTL would have lost 75 % of them.
    assert answer["share_of_hits_older_than_s"] == {"60.0": 0.75, "300.0": 0.25}


def test_a_kind_without_hits_reports_no_ages() -> None:
    after = {'lorebase_cache_requests_total{kind="df",result="miss"}': 7.0}
    assert hit_report({}, after) == {
        "df": {"hit": 0.0, "miss": 7.0, "hit_rate": 0.0, "share_of_hits_older_than_s": {}}
    }


def test_soak_growth_bound_is_one_sided() -> None:
    """A backend that shrinks when its pool connection is recycled is within bounds; one that
    grows past 10 % is not, and neither is a server process that does."""
    shrunk = growth_checks({"server": 1.5, "postgres": -38.0})
    assert all(shrunk.values())
    grown = growth_checks({"server": 0.0, "postgres": 10.5})
    assert grown == {
        "processes_within_10pct": True,
        "postgres_private_per_backend_within_10pct": False,
    }
    assert not growth_checks({"server": 12.0, "redis": 400.0})["processes_within_10pct"]
