"""An automated accessibility audit of the page on show, computed in the page itself:

* WCAG AA colour contrast of every visible piece of text (and of form fields' values and
  placeholders): the relative luminance of the computed colour against the composited
  background of its ancestors, at least 4.5:1, or 3:1 for large text (24 px, or 18.66 px bold);
  disabled controls are exempt, as WCAG says;
* every input, select, textarea and button has an accessible name (label, aria-label,
  aria-labelledby, title or text);
* focus is visible: tabbing through the page, every focused element draws an outline or a
  box-shadow;
* nothing scrolls sideways (run it at 390 px for the narrow-screen check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

CHECKS = (Path(__file__).with_name("audit.js")).read_text(encoding="utf-8")


def _run(page: Page, check: str) -> Any:
    return page.evaluate(f"({CHECKS}).{check}()")


def contrast_problems(page: Page) -> list[str]:
    found: list[str] = _run(page, "contrast")
    return found


def name_problems(page: Page) -> list[str]:
    found: list[str] = _run(page, "names")
    return found


def focus_problems(page: Page, *, limit: int = 60) -> list[str]:
    """Tab from the top of the page through up to `limit` stops (or until focus comes back
    around); every stop must show where focus is."""
    page.evaluate("window.scrollTo(0, 0); document.activeElement && document.activeElement.blur()")
    problems: list[str] = []
    seen: set[str] = set()
    for _ in range(limit):
        page.keyboard.press("Tab")
        state = _run(page, "focus")
        if state is None or state["key"] in seen:
            break
        seen.add(state["key"])
        if not state["shown"]:
            problems.append(f"focus not visible on {state['what']}")
        if not state["visible"]:
            problems.append(f"focus on an invisible element {state['what']}")
    if not seen:
        problems.append("nothing on the page takes keyboard focus")
    return problems


def overflow_problems(page: Page) -> list[str]:
    width, scroll = page.evaluate("[window.innerWidth, document.documentElement.scrollWidth]")
    return [] if scroll <= width else [f"the page scrolls sideways: {scroll} px wide in {width}"]


def audit(page: Page, *, focus: bool = True) -> list[str]:
    where = page.url
    found = contrast_problems(page) + name_problems(page) + overflow_problems(page)
    if focus:
        found += focus_problems(page)
    return [f"{where}: {problem}" for problem in found]
