"""Every console page, filled with data, passes the automated audit (`audit.py`): WCAG AA
contrast, accessible names, visible focus, and no sideways scrolling at 390 px."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.audit import (
    audit,
    contrast_problems,
    focus_problems,
    name_problems,
    overflow_problems,
)
from tests.browser.conftest import ADMIN, open_page, sign_in, sign_up

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

RUN = secrets.token_hex(2)
NOTES = "# Notes\n\n## Deploys\nWe deploy on Tuesdays after the stand-up, never on Fridays.\n"


def audit_both_widths(page: Page) -> list[str]:
    """The full audit at desktop width, then contrast, names and overflow at 390 px."""
    found = audit(page)
    page.set_viewport_size({"width": 390, "height": 900})
    try:
        found += [f"{page.url} @390px: {p}" for p in audit(page, focus=False)]
    finally:
        page.set_viewport_size({"width": 1280, "height": 900})
    return found


def test_every_page_passes_the_audit(browser: Browser, console_url: str, tmp_path: Path) -> None:
    page, watch = open_page(browser, console_url)
    found: list[str] = []
    page.goto("/login")
    expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    found += audit_both_widths(page)

    sign_up(page, "ada" + RUN)
    page.get_by_label("Name", exact=True).fill("Audit")
    page.get_by_role("button", name="Create project").click()
    page.get_by_role("button", name="Members Audit").click()
    expect(page.get_by_label(f"Role of ada{RUN}")).to_be_visible()
    found += audit_both_widths(page)

    page.goto("/knowledge")
    page.get_by_label("Project", exact=True).select_option(label="Audit")
    notes = tmp_path / "notes.md"
    notes.write_text(NOTES)
    page.locator("#files").set_input_files(str(notes))
    expect(page.locator('.job[data-status="succeeded"]')).to_have_count(1, timeout=60_000)
    page.get_by_role("button", name="Versions of notes.md").click()
    page.get_by_role("button", name="View 1.0.0").click()
    expect(page.locator(".doc-content")).to_contain_text("Tuesdays")
    found += audit_both_widths(page)

    page.goto("/ask")
    page.get_by_role("textbox", name="Question").fill("When do we deploy?")
    page.get_by_role("button", name="Ask").click()
    expect(page.locator("#answer a.cite").first).to_be_visible(timeout=30_000)
    found += audit_both_widths(page)

    page.goto("/tasks")
    page.get_by_label("Title", exact=True).fill("Freeze deploys")
    page.get_by_role("button", name="Create task").click()
    expect(page.locator('[data-task="Freeze deploys"]')).to_be_visible()
    page.get_by_label("Title", exact=True).fill("Tell the team")
    page.get_by_label("Depends on").select_option(label="Freeze deploys")
    page.get_by_role("button", name="Create task").click()
    expect(page.locator('[data-task="Tell the team"] .blockers')).to_be_visible()
    found += audit_both_widths(page)

    page.goto("/connect")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator("#new-key")).to_be_visible()
    found += audit_both_widths(page)
    watch.check()

    admin, admin_watch = open_page(browser, console_url)
    sign_in(admin, *ADMIN)
    admin.goto("/admin")
    expect(admin.locator("#queue-depth")).to_be_visible()
    found += audit_both_widths(admin)
    admin_watch.check()
    assert not found, "\n".join(found)


BAD_PAGE = """<!doctype html><html><head><style>
  :focus { outline: none; }
  .pale { color: #999; background: #fff; }
  .wide { width: 900px; height: 10px; }
</style></head><body>
  <p class="pale">grey on white</p>
  <p style="color:#fff;background:#0b5cad">fine white on blue</p>
  <input type="text">
  <button></button>
  <a href="#x">a link</a>
  <div class="wide"></div>
</body></html>"""


def test_the_audit_finds_each_kind_of_problem(browser: Browser) -> None:
    page, _watch = open_page(browser, "http://127.0.0.1", width=390)
    page.set_content(BAD_PAGE)
    contrast = contrast_problems(page)
    assert len(contrast) == 1, contrast
    assert "grey on white" in contrast[0]
    assert "2.85" in contrast[0]
    names = name_problems(page)
    assert [n.split(":", 1)[1].strip()[:6] for n in names] == ["<input", "<butto"]
    focus = focus_problems(page)
    assert any("focus not visible on <a" in f for f in focus), focus
    assert overflow_problems(page) == [
        "the page scrolls sideways: 908 px wide in 390"
    ]  # 900 + body margin
