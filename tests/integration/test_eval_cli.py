"""`lorebase eval` and `lorebase query` as a user runs them (typer, against the test database):
the eval ingests a small slice of tests/data/pydoc-qa through the pipeline, prints the table
and the JSON, and deletes its temporary project."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx

from lorebase.context import AppContext
from lorebase.settings import Settings
from tests.factories import create_project, register_user
from tests.integration.test_cli_user import _env, _invoke
from tests.retrieval_seed import seed_document

DATASET = Path(__file__).parents[1] / "data" / "pydoc-qa"
QUERIES = ("q04", "q10", "q20", "q25", "q37", "q38", "q47", "q48")


def _slice(target: Path) -> None:
    """The judged documents of a few queries plus some others: a dataset that ingests fast."""
    qrels = [line.split("\t") for line in (DATASET / "qrels" / "test.tsv").read_text().splitlines()]
    wanted = [row for row in qrels[1:] if row[0] in QUERIES]
    keep = {row[1] for row in wanted}
    corpus = (DATASET / "corpus.jsonl").read_text().splitlines()
    keep.update(json.loads(line)["_id"] for line in corpus[::30])
    (target / "qrels").mkdir(parents=True)
    (target / "corpus.jsonl").write_text(
        "\n".join(line for line in corpus if json.loads(line)["_id"] in keep) + "\n"
    )
    (target / "queries.jsonl").write_text(
        "\n".join(
            line
            for line in (DATASET / "queries.jsonl").read_text().splitlines()
            if json.loads(line)["_id"] in QUERIES
        )
        + "\n"
    )
    (target / "qrels" / "test.tsv").write_text(
        "\n".join(["\t".join(qrels[0]), *("\t".join(row) for row in wanted)]) + "\n"
    )


async def test_eval_prints_the_table_and_json_and_cleans_up(
    ctx: AppContext, settings: Settings, tmp_path: Path
) -> None:
    _slice(tmp_path / "slice")
    async with ctx.db.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM projects")
        projects_before = (await cur.fetchone())["n"]  # type: ignore[index]
    result = await asyncio.to_thread(
        _invoke,
        ["eval", str(tmp_path / "slice"), "--json", str(tmp_path / "report.json")],
        _env(settings, tmp_path),
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(line for line in lines if line.startswith("mode"))
    assert "nDCG@10" in header
    assert "p95 ms" in header
    for mode in ("semantic", "fulltext", "hybrid", "hybrid+rerank"):
        assert any(line.startswith(mode + " ") for line in lines), mode
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["queries"] == len(QUERIES)
    assert report["chunks"] >= report["documents"] > len(QUERIES)
    by_mode = {m["mode"]: m for m in report["modes"]}
    for mode in by_mode.values():
        for metric in ("ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10"):
            assert 0.0 <= mode[metric] <= 1.0
        assert 0 < mode["p50_ms"] <= mode["p95_ms"]
    # Easy questions on a small corpus: the dense leg finds most of them.
    assert by_mode["semantic"]["recall_at_10"] >= 0.5
    assert by_mode["hybrid+rerank"]["warnings"]  # no reranker configured in tests
    async with ctx.db.connection() as conn:
        cur = await conn.execute("SELECT count(*) AS n FROM projects")
        assert (await cur.fetchone())["n"] == projects_before  # type: ignore[index]


async def test_eval_runs_several_sets_with_answer_metrics(
    ctx: AppContext, settings: Settings, tmp_path: Path
) -> None:
    """Two datasets in one run, the keyword/natural breakdown, and `--answers`: every question
    asked through the query service with the default (extractive) answerer."""
    _slice(tmp_path / "one")
    _slice(tmp_path / "two")
    result = await asyncio.to_thread(
        _invoke,
        [
            "eval",
            str(tmp_path / "one"),
            str(tmp_path / "two"),
            "--mode",
            "semantic,fulltext",
            "--answers",
            "--json",
            str(tmp_path / "report.json"),
        ],
        _env(settings, tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "nDCG@10 keyword (4)" in result.output
    assert "no-ans|rank1 rel" in result.output
    reports = json.loads((tmp_path / "report.json").read_text())["datasets"]
    assert [Path(r["dataset"]).name for r in reports] == ["one", "two"]
    for report in reports:
        by_mode = {m["mode"]: m for m in report["modes"]}
        assert by_mode["semantic"]["queries_by_kind"] == {"keyword": 4, "paraphrase": 4}
        assert by_mode["fulltext"]["answers"] is None  # answers come from semantic or hybrid
        answers = by_mode["semantic"]["answers"]
        assert answers["queries"] == len(QUERIES)
        for metric in ("answered", "cites_relevant", "top1_relevant"):
            assert 0.0 <= answers[metric] <= 1.0
        # The answerer quotes what retrieval found: it cites a relevant document at least as
        # often as rank 1 is relevant.
        assert answers["cites_relevant"] >= answers["top1_relevant"] > 0


async def test_query_command_prints_ranked_passages(
    ctx: AppContext, client: httpx.AsyncClient, settings: Settings, tmp_path: Path
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    await seed_document(
        ctx,
        project_id=uuid.UUID(project["id"]),
        name="loops",
        chunks=["The break statement terminates the nearest enclosing loop."],
    )
    result = await asyncio.to_thread(
        _invoke,
        ["query", "how do I leave a loop?", "--project", project["id"], "--answer"],
        _env(settings, tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "loops 1.0.0: The break statement" in result.output
    assert "[1]" in result.output  # the extractive answer cites its source
    missing = await asyncio.to_thread(
        _invoke, ["query", "x", "--project", str(uuid.uuid4())], _env(settings, tmp_path)
    )
    assert missing.exit_code == 1
    assert "not found" in missing.output
