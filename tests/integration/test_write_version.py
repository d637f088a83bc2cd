"""`documents.service.write_version`: the one place a document version is written."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from lorebase.content import sha256
from lorebase.context import AppContext
from lorebase.documents.models import NewContent, Written
from lorebase.documents.service import write_version
from lorebase.errors import NotFound
from lorebase.knowledge.enqueue import enqueue_written
from tests.factories import create_project, register_user


def _content(text: str) -> NewContent:
    return NewContent(
        content_hash=sha256(text),
        size_bytes=len(text.encode()),
        mime_type="text/markdown",
        text=text,
        metadata={"format": "markdown", "language": None, "source": {"source": "t"}},
    )


async def _owner(client: httpx.AsyncClient) -> tuple[uuid.UUID, uuid.UUID]:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    return uuid.UUID(project["id"]), uuid.UUID(user.id)


async def _write(ctx: AppContext, project_id: uuid.UUID, text: str, **kw: Any) -> Written:
    async with ctx.db.transaction() as conn:
        return await write_version(
            conn, project_id=project_id, content=_content(text), created_by=None, **kw
        )


async def _versions(ctx: AppContext, project_id: uuid.UUID) -> list[tuple[str, str]]:
    async with ctx.db.connection() as conn:
        cursor = await conn.execute(
            """
            SELECT d.name, v.version FROM document_versions v JOIN documents d
            ON d.id = v.document_id WHERE d.project_id = %s
            ORDER BY d.name, v.major, v.minor, v.patch
            """,
            (project_id,),
        )
        return [(row["name"], row["version"]) for row in await cursor.fetchall()]


async def test_new_document_then_same_content_then_new_content(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    project_id, _ = await _owner(client)
    first = await _write(
        ctx, project_id, "one", name="a.md", type="markdown", tags=["x", "y"], metadata={"k": 1}
    )
    assert first.outcome == "added"
    assert first.document["version"] == "1.0.0"
    assert first.to_index is not None
    assert first.to_index["version"] == "1.0.0"

    again = await _write(ctx, project_id, "one", name="a.md", type="markdown", tags=["z"])
    assert again.outcome == "unchanged", "the same bytes are the same document"
    assert again.version is None
    assert again.to_index is None
    assert again.document["id"] == first.document["id"]
    assert again.document["tags"] == ["x", "y"], "a duplicate changes nothing"

    async with ctx.db.connection() as conn:
        await conn.execute(
            'UPDATE documents SET metadata = metadata || \'{"error": "old"}\' WHERE id = %s',
            (first.document["id"],),
        )
    changed = await _write(
        ctx, project_id, "two", name="a.md", type="markdown", tags=["y", "z"], metadata={"n": 2}
    )
    assert changed.outcome == "updated"
    assert changed.document["id"] == first.document["id"]
    assert changed.document["version"] == "1.1.0"
    assert changed.document["tags"] == ["x", "y", "z"], "tags merge, old ones first"
    assert changed.document["metadata"] == {"k": 1, "n": 2}, "metadata merges, error dropped"
    assert await _versions(ctx, project_id) == [("a.md", "1.0.0"), ("a.md", "1.1.0")]


async def test_failed_content_is_handed_back_to_be_indexed_again(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    project_id, _ = await _owner(client)
    first = await _write(ctx, project_id, "body", name="f.md", type="markdown")
    async with ctx.db.connection() as conn:
        await conn.execute(
            "UPDATE documents SET status = 'failed', metadata = '{\"error\": \"outage\"}' "
            "WHERE id = %s",
            (first.document["id"],),
        )
    retried = await _write(ctx, project_id, "body", name="other-name.md", type="markdown")
    assert retried.outcome == "retried"
    assert retried.document["id"] == first.document["id"]
    assert retried.document["status"] == "pending"
    assert "error" not in retried.document["metadata"]
    assert retried.to_index is not None
    assert first.version is not None
    assert retried.to_index["id"] == first.version["id"]
    assert retried.to_index["version"] == "1.0.0", "no new version for the same content"
    assert await _versions(ctx, project_id) == [("f.md", "1.0.0")]


async def test_sources_api_versions_and_new_documents(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    project_id, _ = await _owner(client)
    uri = "https://example.test/page"
    page = await _write(
        ctx, project_id, "p1", name="Page", type="web", source_uri=uri, status="ready"
    )
    assert page.outcome == "added"
    assert page.to_index is None, "a ready source version is indexed by its caller"
    same = await _write(ctx, project_id, "p1", name="Page", type="web", source_uri=uri)
    assert same.outcome == "unchanged"
    moved = await _write(
        ctx, project_id, "p2", name="Page", type="web", source_uri=uri, status="ready"
    )
    assert (moved.outcome, moved.document["version"]) == ("updated", "1.1.0")

    # The API asked for a version: the same content still makes one, with its bump.
    api = await _write(ctx, project_id, "p2", document_id=page.document["id"], bump="major")
    assert (api.outcome, api.document["version"]) == ("updated", "2.0.0")
    with pytest.raises(NotFound):
        await _write(ctx, project_id, "p2", document_id=uuid.uuid4())

    # API creation never matches by name or content.
    twin = await _write(ctx, project_id, "p2", name="Page", type="web", new_document=True)
    assert twin.outcome == "added"
    assert twin.document["id"] != page.document["id"]


async def test_concurrent_writers_of_one_name_get_one_version_each(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    project_id, _ = await _owner(client)

    async def writer(text: str) -> Written:
        async with ctx.db.transaction() as conn:
            written = await write_version(
                conn,
                project_id=project_id,
                name="shared.md",
                type="markdown",
                content=_content(text),
                created_by=None,
            )
            await asyncio.sleep(0.05)  # hold the transaction open: the others must wait
            return written

    results = await asyncio.gather(*(writer(f"text {n}") for n in range(5)))
    assert len({r.document["id"] for r in results}) == 1, "one document, not duplicates"
    assert sorted(r.document["version"] for r in results) == [
        "1.0.0",
        "1.1.0",
        "1.2.0",
        "1.3.0",
        "1.4.0",
    ]
    assert len(await _versions(ctx, project_id)) == 5

    same = await asyncio.gather(*(writer("identical") for _ in range(4)))
    assert sorted(r.outcome for r in same) == ["unchanged", "unchanged", "unchanged", "updated"]
    assert len(await _versions(ctx, project_id)) == 6


async def test_the_job_commits_with_the_version_or_neither_does(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    project_id, user_id = await _owner(client)

    class Abort(Exception):
        pass

    queued: list[uuid.UUID] = []

    async def write_then_fail() -> None:
        async with ctx.db.transaction() as conn:
            written = await write_version(
                conn,
                project_id=project_id,
                name="lost.md",
                type="markdown",
                content=_content("never stored"),
                created_by=user_id,
            )
            job_id = await enqueue_written(conn, written=written, kind="upload", created_by=user_id)
            assert job_id is not None
            queued.append(job_id)
            raise Abort

    with pytest.raises(Abort):
        await write_then_fail()
    assert len(queued) == 1
    assert await _versions(ctx, project_id) == []
    async with ctx.db.connection() as conn:
        cursor = await conn.execute("SELECT count(*) AS n FROM jobs WHERE id = %s", (queued[0],))
        row = await cursor.fetchone()
    assert row is not None
    assert row["n"] == 0
