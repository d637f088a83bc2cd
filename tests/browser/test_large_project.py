"""A project of 1,000 documents: the Knowledge page shows one page of rows and moves through
the rest. The server time of the page's requests is printed (`-s`) for the README's figure;
it is not asserted (timings live in benchmarks, not in tests)."""

from __future__ import annotations

import secrets
import statistics
import time

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.browser.conftest import PASSWORD, open_page, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

DOCUMENTS = 1000
PAGE_ROWS = 20  # the Knowledge page asks for 20 documents at a time
RUN = secrets.token_hex(2)


def seed(base_url: str, username: str) -> str:
    """A user and a project of DOCUMENTS small Markdown files, uploaded 20 at a time (the
    most one multipart body may carry) and indexed by the server's worker."""
    with httpx.Client(base_url=base_url + "/api/v1", timeout=120) as http:
        made = http.post("/auth/register", json={"username": username, "password": PASSWORD})
        assert made.status_code == 201, made.text
        token = http.post("/auth/token", data={"username": username, "password": PASSWORD})
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        project = http.post("/projects", json={"name": f"Big library {RUN}"}).json()["id"]
        for start in range(0, DOCUMENTS, 20):
            files = [
                ("file", (f"note-{i:04d}.md", f"# Note {i}\n\nFact number {i}.\n".encode()))
                for i in range(start, start + 20)
            ]
            response = http.post("/knowledge/upload", data={"project_id": project}, files=files)
            assert response.status_code == 202, response.text
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            waiting = sum(
                http.get(f"/jobs?project_id={project}&status={s}&limit=1").json()["total"]
                for s in ("queued", "running")
            )
            if waiting == 0:
                break
            time.sleep(0.5)
        failed = http.get(f"/jobs?project_id={project}&status=failed&limit=1").json()["total"]
        assert (waiting, failed) == (0, 0)
    return project


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


def test_a_thousand_documents_are_paged(browser: Browser, console_url: str) -> None:
    username = "lib" + RUN
    project = seed(console_url, username)
    page, watch = open_page(browser, console_url)
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
