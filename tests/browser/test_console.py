"""The console in Chromium: one person's whole first session, then a viewer's limits."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ADMIN, open_page, shoot, sign_in, sign_up

# One `lorebase serve` (and the first admin made by the CLI) is started for the module.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

# Unique names, so the suite also runs against a long-lived server (CONSOLE_TEST_URL).
RUN = secrets.token_hex(2)
ALICE = f"alice{RUN}"

HANDBOOK = """# Handbook

## Holidays
Every employee gets twenty-eight days of paid holiday per year, booked in the HR portal.

## Equipment
Laptops are replaced every three years; request a new one from the IT desk.
"""
ONCALL = """# On-call

## Rotation
The on-call rotation changes every Monday at nine in the morning.
Pages are acknowledged within fifteen minutes.
"""


def upload_and_wait(page: Page, files: list[Path], finished: int) -> None:
    page.locator("#files").set_input_files([str(f) for f in files])
    expect(page.locator('.job[data-status="succeeded"]')).to_have_count(finished, timeout=60_000)


def fail_then_retry_after_reload(page: Page, tmp_path: Path) -> None:
    """A file that cannot be read fails with the reason in words; after a reload (nothing
    remembered in the page) it is retried on the server as a new job."""
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not a PDF")
    page.locator("#files").set_input_files(str(broken))
    failed = page.locator('.job[data-status="failed"]')
    expect(failed).to_have_count(1, timeout=60_000)
    expect(failed).to_contain_text("broken.pdf: could not read the PDF")
    page.reload()
    page.get_by_role("button", name="Retry upload job").click()
    expect(page.get_by_text("Queued again as job")).to_be_visible()
    expect(failed).to_have_count(2, timeout=60_000)  # the same file fails the same way
    expect(page.get_by_role("button", name="Retry upload job")).to_have_count(1)
    page.get_by_label("Show jobs").select_option("failed")
    expect(page.locator(".job")).to_have_count(2)
    page.get_by_label("Show jobs").select_option("")


def test_first_session(browser: Browser, console_url: str, tmp_path: Path) -> None:
    page, watch = open_page(browser, console_url)
    page.goto("/login")
    expect(page.get_by_text("lorebase user create NAME --admin")).to_be_visible()
    page.keyboard.press("Tab")  # the first stop is the skip link, and focus is drawn
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    shoot(page, "sign-in")
    sign_up(page, ALICE)

    # Projects: create one; it appears in the tree with the owner's controls.
    page.get_by_label("Name", exact=True).fill("Company handbook")
    page.get_by_label("Tags (comma-separated)").fill("hr, ops")
    page.get_by_role("button", name="Create project").click()
    row = page.locator('[data-project="Company handbook"]')
    expect(row.get_by_role("button", name="Archive Company handbook")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("On-call notes")
    page.get_by_label("Parent").select_option(label="Company handbook")
    page.get_by_role("button", name="Create project").click()
    expect(page.locator('ul.tree ul [data-project="On-call notes"]')).to_be_visible()
    shoot(page, "projects")

    # Knowledge: two files, two jobs watched to the end without a reload.
    page.goto("/knowledge")
    page.get_by_label("Project", exact=True).select_option(label="Company handbook")
    page.wait_for_load_state("networkidle")
    handbook, oncall = tmp_path / "handbook.md", tmp_path / "oncall.md"
    handbook.write_text(HANDBOOK)
    oncall.write_text(ONCALL)
    upload_and_wait(page, [handbook, oncall], 2)
    expect(page.locator("tbody tr")).to_have_count(2)
    # A changed file of the same name, dropped on the drop zone, becomes version 1.1.0.
    page.evaluate(
        """(text) => {
          const data = new DataTransfer();
          data.items.add(new File([text], "handbook.md", {type: "text/markdown"}));
          document.getElementById("dropzone").dispatchEvent(
            new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        HANDBOOK.replace("twenty-eight", "thirty"),
    )
    expect(page.locator('.job[data-status="succeeded"]')).to_have_count(3, timeout=60_000)
    # A crawl of a loopback address is refused; the form says why, in words.
    watch.expected_statuses.add(422)
    crawl = page.get_by_role("form", name="Crawl a website")
    crawl.get_by_label("URL").fill("http://127.0.0.1:9/")
    crawl.get_by_role("button", name="Start").click()
    expect(crawl.get_by_role("alert")).to_contain_text("private")
    watch.expected_statuses.discard(422)
    fail_then_retry_after_reload(page, tmp_path)
    page.get_by_role("button", name="Versions of handbook.md").click()
    page.get_by_role("button", name="Show changes").click()
    expect(page.locator(".diff .add")).to_contain_text("thirty days")
    expect(page.locator(".diff .del")).to_contain_text("twenty-eight days")
    shoot(page, "knowledge")

    # Ask: passages stream in, then the answer; a citation highlights its quote.
    page.goto("/ask")
    question = "How many days of paid holiday does an employee get?"
    page.get_by_role("textbox", name="Question").fill(question)
    page.get_by_label("Re-rank").check()  # no reranker here: its warning must be shown
    page.get_by_role("button", name="Ask").click()
    citation = page.locator("#answer a.cite").first
    expect(citation).to_be_visible(timeout=30_000)
    citation.click()
    mark = page.locator(".passage.flash mark.hit")
    expect(mark).to_be_visible()
    expect(mark).to_contain_text("thirty days of paid holiday")
    expect(page.locator(".passage").first).to_contain_text("handbook.md")
    expect(page.locator(".passage h3").first).to_contain_text("Holidays")
    expect(page.locator(".alert.warn").first).to_contain_text("rank")
    shoot(page, "ask")

    # Tasks: a task blocked by another; `done` is refused with the API's reason.
    page.goto("/tasks")
    page.get_by_label("Title", exact=True).fill("Write the rotation page")
    page.get_by_label("Priority").select_option("high")
    page.get_by_role("button", name="Create task").click()
    expect(page.locator('[data-task="Write the rotation page"]')).to_be_visible()
    page.get_by_label("Title", exact=True).fill("Announce the rotation")
    page.get_by_label("Assignee").fill("bob")
    page.get_by_label("Depends on").select_option(label="Write the rotation page")
    page.get_by_role("button", name="Create task").click()
    card = page.locator('[data-task="Announce the rotation"]')
    expect(card.locator(".blockers")).to_contain_text("Write the rotation page")
    watch.expected_statuses.add(409)
    card.get_by_label("Status of Announce the rotation").select_option("done")
    expect(card.get_by_role("alert")).to_contain_text("cannot be done while dependencies")
    watch.expected_statuses.discard(409)
    expect(page.locator('[data-column="todo"] [data-task="Announce the rotation"]')).to_be_visible()
    shoot(page, "tasks")

    # Connect an agent: a key shown once and MCP configs filled with this server's URL.
    page.goto("/connect")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").inner_text().strip()
    assert key.startswith("lb_")
    config = page.locator("#mcp-config-0").inner_text()
    assert f"{console_url}/mcp" in config
    assert f"Bearer {key}" in config
    expect(page.locator("#mcp-config-2")).to_contain_text('"mcp"')
    response = httpx.get(
        f"{console_url}/api/v1/projects", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    assert response.json()["total"] == 2
    shoot(page, "connect")
    watch.check()


def test_viewer_and_forged_writes(browser: Browser, console_url: str) -> None:
    owner, owner_watch = open_page(browser, console_url)
    sign_up(owner, "olga" + RUN)
    owner.get_by_label("Name", exact=True).fill("Read-only area")
    owner.get_by_role("button", name="Create project").click()
    viewer, watch = open_page(browser, console_url, width=390)
    sign_up(viewer, "victor" + RUN)
    victor = "victor" + RUN

    # Members by username (or e-mail); an unknown name is said so; roles change in place.
    owner.get_by_role("button", name="Members Read-only area").click()
    expect(owner.get_by_label(f"Role of olga{RUN}")).to_have_value("owner")
    owner_watch.expected_statuses.add(404)
    owner.get_by_label("Username or e-mail").fill("nobody" + RUN)
    owner.get_by_role("button", name="Add member").click()
    expect(owner.get_by_role("alert")).to_contain_text(
        f"no user has the username or e-mail address 'nobody{RUN}'"
    )
    owner_watch.expected_statuses.discard(404)
    owner.get_by_label("Username or e-mail").fill(victor)
    add_form = owner.get_by_role("form", name="Add a member to Read-only area")
    add_form.get_by_label("Role").select_option("editor")
    owner.get_by_role("button", name="Add member").click()
    expect(owner.get_by_text(f"{victor} is now editor.")).to_be_visible()
    owner.get_by_label(f"Role of {victor}").select_option("viewer")
    expect(owner.get_by_text(f"{victor} is now viewer.")).to_be_visible()
    expect(owner.get_by_label(f"Role of {victor}")).to_have_value("viewer")
    owner_watch.check()

    viewer.goto("/projects")
    expect(viewer.locator('[data-project="Read-only area"]')).to_be_visible()
    expect(viewer.get_by_role("button", name="Delete Read-only area")).to_have_count(0)
    expect(viewer.get_by_role("button", name="Rename Read-only area")).to_have_count(0)
    for path in ("/knowledge", "/tasks"):
        viewer.goto(path)
        viewer.get_by_label("Project", exact=True).select_option(label="Read-only area")
        viewer.wait_for_load_state("networkidle")
        expect(viewer.get_by_text("Read-only area").first).to_be_attached()
    expect(viewer.get_by_role("button", name="Create task")).to_have_count(0)
    expect(viewer.locator("select[aria-label^='Status of']")).to_have_count(0)
    viewer.goto("/knowledge")
    expect(viewer.locator("#dropzone")).to_have_count(0)
    expect(viewer.get_by_text("Your role here is viewer")).to_be_visible()
    # At 390 px nothing scrolls sideways.
    assert viewer.evaluate("document.documentElement.scrollWidth") <= 390
    shoot(viewer, "viewer-390px")

    # Forged writes with the viewer's cookie: refused by RBAC, and without the CSRF header
    # refused before anything else looks at the request.
    watch.expected_statuses.add(403)
    project_id = viewer.evaluate("localStorage.getItem('lb.project')")
    statuses = viewer.evaluate(
        """async (projectId) => {
          const csrf = document.cookie.match(/lb_csrf=([^;]+)/)[1];
          const body = JSON.stringify({project_id: projectId, title: "forged"});
          const post = (headers) => fetch("/api/v1/tasks", {method: "POST", body,
            headers: {"Content-Type": "application/json", ...headers}});
          const withToken = await post({"X-CSRF-Token": csrf});
          const without = await post({});
          return [withToken.status, (await withToken.json()).detail,
                  without.status, (await without.json()).detail];
        }""",
        project_id,
    )
    assert statuses[0] == 403
    assert "viewer" in statuses[1]
    assert statuses[2] == 403
    assert "CSRF" in statuses[3]
    watch.check()

    # Promoted to owner (not the creator), Victor manages members too.
    owner.get_by_label(f"Role of {victor}").select_option("owner")
    expect(owner.get_by_text(f"{victor} is now owner.")).to_be_visible()
    viewer.goto("/projects")
    viewer.get_by_role("button", name="Members Read-only area").click()
    expect(viewer.get_by_label(f"Role of {victor}")).to_have_value("owner")
    watch.check()


def test_admin_page(browser: Browser, console_url: str) -> None:
    page, watch = open_page(browser, console_url)
    sign_in(page, *ADMIN)
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name=re.compile(r"Users \(\d+\)"))).to_be_visible()
    expect(page.get_by_role("cell", name=ALICE)).to_be_visible()
    expect(page.locator(".kv").first).to_contain_text("Database")
    expect(page.locator("#queue-depth")).to_have_text(re.compile(r"^\d+$"))
    assert int(page.locator("#failed-count").inner_text()) >= 2
    failure = page.locator("[data-failed-job]").first
    expect(failure).to_contain_text("broken.pdf: could not read the PDF")
    expect(failure).to_contain_text("Company handbook")
    spaces = page.get_by_role("region", name="Embedding model and jobs per project")
    row = spaces.get_by_role("row").filter(has_text="Company handbook")
    expect(row).to_contain_text("-d")
    expect(row).to_contain_text("matches")
    expect(row).to_contain_text("chunks of 2 documents")
    shoot(page, "admin")
    # A failure links to its job on the Knowledge page, picked out.
    failure.get_by_role("link", name=re.compile("See it")).click()
    page.wait_for_url("**/knowledge?project=*")
    expect(page.locator(".job.flash")).to_contain_text("broken.pdf")
    watch.check()
    # Non-admins see no Admin link and the users list refuses them.
    other, other_watch = open_page(browser, console_url)
    sign_up(other, "nadia" + RUN)
    expect(other.get_by_role("link", name="Admin")).to_be_hidden()
    other_watch.expected_statuses.add(403)
    assert other.evaluate("fetch('/console/users').then(r => r.status)") == 403
    other_watch.check()
