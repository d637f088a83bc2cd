"""Uploads over HTTP, indexed by a real worker on the real queue."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from lorebase.context import AppContext
from tests import samples
from tests.factories import create_project, register_user
from tests.ingestion import chunks_of, drain, job_of, upload

GUIDE = """# Deployment guide

Lorebase runs as one process with an embedded database. This guide explains how to run it
in production: where the data lives, how to back it up, and how to scale indexing out over
several machines when one worker is not enough for the corpus you feed it.

## Backups

Back up the data directory every night with a snapshot of the volume.
Restores take about five minutes for a small corpus.

## Scaling

Run several `lorebase worker` processes against one PostgreSQL to index faster.
"""


async def test_upload_is_indexed_by_a_worker(ctx: AppContext, client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    response = await client.post(
        "/api/v1/knowledge/upload",
        headers=user.headers,
        data={"project_id": project["id"], "tags": "ops,guide"},
        files={"file": ("guide.md", GUIDE.encode(), "text/markdown")},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["job_id"]
    assert body["version"] == "1.0.0"
    job = (await client.get(f"/api/v1/jobs/{body['job_id']}", headers=user.headers)).json()
    assert job["status"] == "queued"

    await drain(ctx)

    job = (await client.get(f"/api/v1/jobs/{body['job_id']}", headers=user.headers)).json()
    assert job["status"] == "succeeded", job
    stages = job["progress"]["stages"]
    assert set(stages) == {"extract", "chunk", "embed", "store"}
    assert all(stage["done"] == stage["total"] for stage in stages.values())
    assert job["document_ids"] == [body["document_id"]]

    chunks = await chunks_of(ctx, body["document_id"])
    assert chunks, "the document was chunked and stored"
    sections = [c["metadata"]["section_path"] for c in chunks]
    assert ["Deployment guide", "Backups"] in sections
    first = chunks[0]
    assert first["embedding_model"] == ctx.embedder.model_id
    assert first["embedding_dim"] == ctx.embedder.dimension
    assert first["ts_config"] == "english"
    assert first["metadata"]["source"] == "guide.md"
    assert {"char_start", "char_end", "chunk_index"} <= set(first["metadata"])

    document = (
        await client.get(f"/api/v1/documents/{body['document_id']}", headers=user.headers)
    ).json()
    assert document["status"] == "ready"
    assert document["tags"] == ["ops", "guide"]
    start, end = first["metadata"]["char_start"], first["metadata"]["char_end"]
    assert document["content"][start:end] == first["chunk_text"]


async def test_every_format_in_one_upload_and_a_corrupt_pdf_fails_alone(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    pdf = samples.pdf_bytes(
        [
            ("Intro", "Solar panels turn light into electricity for the house. " * 6),
            ("Care", "Clean the panels yearly with soft water and a brush. " * 6),
        ]
    )
    files = [
        ("handbook.md", samples.MARKDOWN.encode()),
        ("notes.txt", b"Plain notes about the quarterly planning meeting.\n"),
        ("kettle.html", samples.HTML.encode()),
        ("solar.pdf", pdf),
        ("runbook.docx", samples.docx_bytes()),
        ("billing.py", samples.PYTHON.encode()),
        ("service.json", samples.json_bytes()),
        ("service.yaml", samples.yaml_bytes()),
        ("people.csv", samples.CSV.encode()),
        ("broken.pdf", pdf[: len(pdf) // 3]),
    ]
    response = await upload(client, user.headers, project["id"], *files)
    assert response.status_code == 202, response.text
    accepted = {item["name"]: item for item in response.json()}
    assert list(accepted) == [name for name, _ in files], "one result per file, in order"

    await drain(ctx)

    jobs = {name: await job_of(client, user.headers, a["job_id"]) for name, a in accepted.items()}
    broken = jobs.pop("broken.pdf")
    assert broken["status"] == "failed"
    assert broken["error"].startswith("broken.pdf: could not read the PDF")
    assert {name: job["status"] for name, job in jobs.items()} == dict.fromkeys(jobs, "succeeded")
    failed_doc = await client.get(
        f"/api/v1/documents/{accepted['broken.pdf']['document_id']}", headers=user.headers
    )
    assert failed_doc.json()["status"] == "failed"
    assert "could not read the PDF" in failed_doc.json()["metadata"]["error"]

    solar = await chunks_of(ctx, accepted["solar.pdf"]["document_id"])
    care = next(c for c in solar if "yearly" in c["chunk_text"])
    assert care["metadata"]["page"] == 2
    assert care["metadata"]["section_path"] == ["Care"]
    runbook = await chunks_of(ctx, accepted["runbook.docx"]["document_id"])
    assert any(c["metadata"]["section_path"] == ["Runbook", "Paging"] for c in runbook)
    billing = await chunks_of(ctx, accepted["billing.py"]["document_id"])
    assert billing[0]["metadata"]["language"] == "python"
    service = await chunks_of(ctx, accepted["service.yaml"]["document_id"])
    assert "service.port: 8080" in service[0]["chunk_text"]
    kettle = await chunks_of(ctx, accepted["kettle.html"]["document_id"])
    assert "descale --acid citric" in " ".join(c["chunk_text"] for c in kettle)
    types = {a["document"]["type"] for a in accepted.values()}
    assert types == {"markdown", "text", "html", "pdf", "docx", "code", "json", "yaml", "csv"}


async def test_identical_content_is_free_and_a_new_version_replaces_the_old(
    ctx: AppContext, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    first = await upload(client, user.headers, project["id"], ("guide.md", GUIDE.encode()))
    assert first.status_code == 202
    await drain(ctx)

    again = await upload(client, user.headers, project["id"], ("copy.md", GUIDE.encode()))
    assert again.status_code == 200, "identical content: the existing document, no job"
    assert again.json()["job_id"] is None
    assert again.json()["duplicate"] is True
    assert again.json()["document_id"] == first.json()["document_id"]

    embedded: list[str] = []
    embed_batch = ctx.embedder.embed_batch

    async def counting(texts: Sequence[str]) -> list[list[float]]:
        embedded.extend(texts)
        return await embed_batch(texts)

    monkeypatch.setattr(ctx.embedder, "embed_batch", counting)
    updated = GUIDE.replace("five minutes", "ten minutes")
    second = await upload(client, user.headers, project["id"], ("guide.md", updated.encode()))
    assert second.status_code == 202
    assert second.json()["document_id"] == first.json()["document_id"]
    assert second.json()["version"] == "1.1.0"
    await drain(ctx)
    # Only the changed chunk is embedded again; the others keep the first version's vectors.
    assert embedded, "the changed chunk is embedded"
    assert all("ten minutes" in text for text in embedded), embedded

    chunks = await chunks_of(ctx, first.json()["document_id"])
    assert {c["version"] for c in chunks} == {"1.1.0"}, "only the latest version is indexed"
    assert any("ten minutes" in c["chunk_text"] for c in chunks)
    assert len({c["chunk_index"] for c in chunks}) == len(chunks)
    old = await client.get(
        f"/api/v1/documents/{first.json()['document_id']}",
        params={"version": "1.0.0"},
        headers=user.headers,
    )
    assert "five minutes" in old.json()["content"]
    assert old.json()["version"] == "1.0.0"
    versions = await client.get(
        f"/api/v1/documents/{first.json()['document_id']}/versions", headers=user.headers
    )
    assert [v["version"] for v in versions.json()["items"]] == ["1.1.0", "1.0.0"]
    assert versions.json()["total"] == 2


async def test_oversized_and_lying_files_are_refused_and_nothing_is_stored(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    big = b"a" * (ctx.settings.max_upload_bytes + 1)
    too_big = await upload(
        client, user.headers, project["id"], ("ok.md", b"# ok"), ("big.txt", big)
    )
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    assert "big.txt" in too_big.json()["detail"]
    lying = await upload(
        client, user.headers, project["id"], ("ok.md", b"# fine"), ("fake.pdf", b"# not a pdf")
    )
    assert lying.status_code == 415
    assert "fake.pdf is named .pdf but its content is not a PDF" in lying.json()["detail"]
    image = await upload(
        client, user.headers, project["id"], ("photo.jpg", b"\xff\xd8\xff\xe0JFIF\x00")
    )
    assert image.status_code == 415
    listed = await client.get(
        "/api/v1/documents", params={"project_id": project["id"]}, headers=user.headers
    )
    assert listed.json()["total"] == 0, "a rejected request stores nothing"


async def test_other_users_get_404_and_viewers_get_403(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    owner = await register_user(client)
    stranger = await register_user(client)
    viewer = await register_user(client)
    project = await create_project(client, owner.headers)
    member = await client.put(
        f"/api/v1/projects/{project['id']}/members/{viewer.id}",
        json={"role": "viewer"},
        headers=owner.headers,
    )
    assert member.status_code == 200, member.text
    accepted = await upload(client, owner.headers, project["id"], ("a.md", b"# A\n\nalpha"))
    job_id, document_id = accepted.json()["job_id"], accepted.json()["document_id"]

    assert (
        await upload(client, stranger.headers, project["id"], ("b.md", b"# B"))
    ).status_code == 404
    assert (await client.get(f"/api/v1/jobs/{job_id}", headers=stranger.headers)).status_code == 404
    assert (
        await client.get(f"/api/v1/documents/{document_id}", headers=stranger.headers)
    ).status_code == 404
    assert (
        await client.post(f"/api/v1/jobs/{job_id}/cancel", headers=stranger.headers)
    ).status_code == 404

    assert (
        await upload(client, viewer.headers, project["id"], ("c.md", b"# C"))
    ).status_code == 403
    assert (await client.get(f"/api/v1/jobs/{job_id}", headers=viewer.headers)).status_code == 200
    assert (
        await client.delete(f"/api/v1/documents/{document_id}", headers=viewer.headers)
    ).status_code == 403
    assert (await client.get(f"/api/v1/jobs/{job_id}")).status_code == 401
    await drain(ctx)


async def test_documents_api_versions_and_delete(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    created = await client.post(
        "/api/v1/documents",
        json={
            "project_id": project["id"],
            "name": "Architecture decision",
            "type": "markdown",
            "content": "# ADR 1\n\nWe use PostgreSQL for everything.",
            "tags": ["adr"],
        },
        headers=user.headers,
    )
    assert created.status_code == 201, created.text
    document = created.json()
    assert document["version"] == "1.0.0"
    assert document["job_id"]
    await drain(ctx)
    generation_before = await corpus_generation(ctx, project["id"])

    for bump, expected in (("patch", "1.0.1"), ("major", "2.0.0"), ("minor", "2.1.0")):
        version = await client.post(
            f"/api/v1/documents/{document['id']}/version",
            json={"content": f"# ADR 1\n\nWe use PostgreSQL ({bump}).", "bump": bump},
            headers=user.headers,
        )
        assert version.status_code == 201, version.text
        assert version.json()["version"] == expected
    await drain(ctx)
    latest = (await client.get(f"/api/v1/documents/{document['id']}", headers=user.headers)).json()
    assert latest["version"] == "2.1.0"
    assert latest["status"] == "ready"
    assert latest["content"].endswith("(minor).")
    chunks = await chunks_of(ctx, document["id"])
    assert {c["version"] for c in chunks} == {"2.1.0"}
    assert await corpus_generation(ctx, project["id"]) > generation_before

    missing = await client.get(
        f"/api/v1/documents/{document['id']}", params={"version": "9.9.9"}, headers=user.headers
    )
    assert missing.status_code == 404
    invalid = await client.get(
        f"/api/v1/documents/{document['id']}", params={"version": "v1"}, headers=user.headers
    )
    assert invalid.status_code == 422

    renamed = await client.put(
        f"/api/v1/documents/{document['id']}",
        json={"name": "ADR 0001", "tags": ["adr", "db"]},
        headers=user.headers,
    )
    assert renamed.json()["name"] == "ADR 0001"
    assert renamed.json()["version"] == "2.1.0"

    listed = await client.get(
        "/api/v1/documents", params={"project_id": project["id"], "tag": "db"}, headers=user.headers
    )
    assert [d["id"] for d in listed.json()["items"]] == [document["id"]]

    deleted = await client.delete(f"/api/v1/documents/{document['id']}", headers=user.headers)
    assert deleted.status_code == 204
    assert await chunks_of(ctx, document["id"]) == []
    gone = await client.get(f"/api/v1/documents/{document['id']}", headers=user.headers)
    assert gone.status_code == 404


async def test_cancelling_a_queued_job(ctx: AppContext, client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    accepted = (
        await upload(client, user.headers, project["id"], ("x.md", b"# X\n\nxylophone"))
    ).json()
    cancelled = await client.post(f"/api/v1/jobs/{accepted['job_id']}/cancel", headers=user.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    await drain(ctx)
    job = await job_of(client, user.headers, accepted["job_id"])
    assert job["status"] == "cancelled", "the worker skips a cancelled job"
    assert await chunks_of(ctx, accepted["document_id"]) == []
    document = await client.get(
        f"/api/v1/documents/{accepted['document_id']}", headers=user.headers
    )
    assert document.json()["status"] == "failed"
    again = await client.post(f"/api/v1/jobs/{accepted['job_id']}/cancel", headers=user.headers)
    assert again.status_code == 200


async def test_ingest_text_route(ctx: AppContext, client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    body = {"project_id": project["id"], "name": "meeting notes", "text": "# Notes\n\nShip it."}
    first = await client.post("/api/v1/knowledge/text", json=body, headers=user.headers)
    assert first.status_code == 202
    assert first.json()["document"]["type"] == "markdown"
    second = await client.post("/api/v1/knowledge/text", json=body, headers=user.headers)
    assert second.status_code == 200
    await drain(ctx)
    job = await job_of(client, user.headers, first.json()["job_id"])
    assert job["kind"] == "text"
    assert job["status"] == "succeeded"


async def corpus_generation(ctx: AppContext, project_id: str) -> int:
    async with ctx.db.connection() as conn:
        cursor = await conn.execute(
            "SELECT corpus_generation FROM projects WHERE id = %s", (project_id,)
        )
        row = await cursor.fetchone()
    assert row is not None
    return int(row["corpus_generation"])


async def test_chunks_are_stored_in_the_projects_text_search_language(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    async with ctx.db.connection() as conn:  # no API sets it yet: a project for code
        await conn.execute(
            "UPDATE projects SET text_search_config = 'simple' WHERE id = %s", (project["id"],)
        )
    response = await client.post(
        "/api/v1/knowledge/upload",
        headers=user.headers,
        data={"project_id": project["id"]},
        files={"file": ("guide.md", GUIDE.encode(), "text/markdown")},
    )
    assert response.status_code == 202, response.text
    await drain(ctx)

    chunks = await chunks_of(ctx, response.json()["document_id"])
    assert chunks
    assert {chunk["ts_config"] for chunk in chunks} == {"simple"}
    async with ctx.db.connection() as conn:
        cur = await conn.execute(
            "SELECT bool_or(tsv @@ 'the'::tsquery) AS stop_word_kept, "
            "bool_and(embedding IS NOT NULL AND vector_dims(embedding) = %s) AS vectors "
            "FROM knowledge_items WHERE document_id = %s",
            (ctx.embedder.dimension, response.json()["document_id"]),
        )
        row = await cur.fetchone()
    assert row == {"stop_word_kept": True, "vectors": True}  # `simple` keeps "the"
