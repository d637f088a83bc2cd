"""A project of 1,000 documents: the Knowledge page shows one page of rows and moves through
the rest. The server time of the page's requests is printed (`-s`) for the README's figure;
it is not asserted (timings live in benchmarks, not in tests).

What is under test is the console on a large project, not ingestion (tests/e2e and
tests/integration cover that): one multipart body of real uploads goes through the server's
job worker and local embedder; the other documents are written in bulk into the server's
database by the product's own writers (`documents.service.write_version`, then
`knowledge.bulk.load_prepared_items`, the bench's fill), with deterministic vectors in the
project's embedding space instead of 980 model runs."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from lorebase.content import sha256
from lorebase.db import Database
from lorebase.documents.models import NewContent
from lorebase.documents.service import write_version
from lorebase.knowledge.bulk import load_prepared_items
from tests.browser.conftest import PASSWORD, Console, open_page, postgres_url, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

DOCUMENTS = 1000
UPLOADED = 20  # the most one multipart body may carry: these go through the job worker
PAGE_ROWS = 20  # the Knowledge page asks for 20 documents at a time
RUN = secrets.token_hex(2)


def _note(i: int) -> str:
    return f"# Note {i}\n\nFact number {i}.\n"


def seed(console: Console, username: str) -> str:
    """A user and a project of DOCUMENTS small Markdown files: UPLOADED of them uploaded and
    indexed by the server's worker, the rest written straight into its database."""
    with httpx.Client(base_url=console.url + "/api/v1", timeout=120) as http:
        made = http.post("/auth/register", json={"username": username, "password": PASSWORD})
        assert made.status_code == 201, made.text
        token = http.post("/auth/token", data={"username": username, "password": PASSWORD})
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        user_id = uuid.UUID(http.get("/auth/me").json()["id"])
        project = http.post("/projects", json={"name": f"Big library {RUN}"}).json()["id"]
        files = [
            ("file", (f"note-{i:04d}.md", _note(i).encode()))
            for i in range(DOCUMENTS - UPLOADED, DOCUMENTS)
        ]
        response = http.post("/knowledge/upload", data={"project_id": project}, files=files)
        assert response.status_code == 202, response.text
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            waiting = sum(
                http.get(f"/jobs?project_id={project}&status={s}&limit=1").json()["total"]
                for s in ("queued", "running")
            )
            if waiting == 0:
                break
            time.sleep(0.5)
        failed = http.get(f"/jobs?project_id={project}&status=failed&limit=1").json()["total"]
        succeeded = http.get(f"/jobs?project_id={project}&status=succeeded&limit=1").json()
        assert (waiting, failed, succeeded["total"]) == (0, 0, UPLOADED)
        # A thread of its own: Playwright's sync API owns this thread's event loop.
        with ThreadPoolExecutor(1) as thread:
            written = thread.submit(
                asyncio.run,
                _write_in_bulk(
                    postgres_url(console),
                    uuid.UUID(project),
                    user_id,
                    range(DOCUMENTS - UPLOADED),
                ),
            ).result()
        assert written == DOCUMENTS - UPLOADED
        listed = http.get(f"/documents?project_id={project}&status=ready&limit=1").json()
        assert listed["total"] == DOCUMENTS
    return str(project)


def _vector(text: str, dim: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A unit vector fixed by the text (a stand-in for the model: nothing here ranks)."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8]))
    vector = rng.standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


async def _write_in_bulk(url: str, project_id: uuid.UUID, owner: uuid.UUID, numbers: range) -> int:
    """Each note as an upload stores it (a ready 1.0.0 version, one chunk), in the space the
    uploads gave the project; one transaction."""
    db = Database(url, min_size=1, max_size=1)
    await db.open()
    try:
        async with db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT embedding_model, embedding_dim FROM projects WHERE id = %s", (project_id,)
            )
            space = await cursor.fetchone()
            assert space is not None
            assert space["embedding_model"], "the uploads gave the project its space"
            model, dim = space["embedding_model"], space["embedding_dim"]
            rows = []
            for i in numbers:
                name, text = f"note-{i:04d}.md", _note(i)
                written = await write_version(
                    conn,
                    project_id=project_id,
                    name=name,
                    type="markdown",
                    metadata={
                        "filename": name,
                        "mime_type": "text/markdown",
                        "size_bytes": len(text),
                    },
                    content=NewContent(
                        content_hash=sha256(text),
                        size_bytes=len(text),
                        mime_type="text/markdown",
                        text=text,
                        metadata={
                            "format": "markdown",
                            "language": None,
                            "source": {"source": name},
                        },
                    ),
                    created_by=owner,
                    status="ready",
                )
                assert written.outcome == "added"
                assert written.version is not None
                rows.append(
                    (
                        uuid.uuid4(),
                        project_id,
                        written.document["id"],
                        written.version["id"],
                        0,
                        text,
                        sha256(text),
                        _vector(text, dim),
                        model,
                        dim,
                    )
                )
            return await load_prepared_items(conn, project_id=project_id, rows=rows)
    finally:
        await db.close()


def server_ms(page: Page, project: str) -> float:
    """One load of the Knowledge page: the server time (request sent to first response byte)
    of the page and every API request it makes, summed."""
    timings: list[float] = []

    def done(request: Request) -> None:
        if "/static/" in request.url:
            return
        timing = request.timing
        timings.append(timing["responseStart"] - timing["requestStart"])

    page.on("requestfinished", done)
    page.goto(f"/knowledge?project={project}")
    expect(page.get_by_role("navigation", name="Document pages")).to_contain_text(
        f"1\N{EN DASH}{PAGE_ROWS} of {DOCUMENTS}"
    )
    page.wait_for_load_state("networkidle")
    page.remove_listener("requestfinished", done)
    return sum(timings)


def test_a_thousand_documents_are_paged(browser: Browser, console: Console) -> None:
    username = "lib" + RUN
    project = seed(console, username)
    page, watch = open_page(browser, console.url)
    sign_in(page, username, PASSWORD)
    samples = [server_ms(page, project) for _ in range(5)]
    docs = page.get_by_role("region", name="Documents")
    expect(docs.locator("tbody tr")).to_have_count(PAGE_ROWS)
    assert page.locator("tr").count() <= PAGE_ROWS + 1, "only one page of rows in the page"
    expect(docs.locator("tbody tr").first).to_contain_text("ready")
    docs.get_by_role("button", name="Next").click()
    pager = page.get_by_role("navigation", name="Document pages")
    expect(pager).to_contain_text(f"{PAGE_ROWS + 1}\N{EN DASH}{2 * PAGE_ROWS} of {DOCUMENTS}")
    expect(docs.locator("tbody tr")).to_have_count(PAGE_ROWS)
    watch.check()
    print(
        f"\nKnowledge page, {DOCUMENTS} documents: server time per load "
        f"median {statistics.median(samples):.0f} ms, min {min(samples):.0f} ms "
        f"(page + API requests, summed; {len(samples)} loads)"
    )
