"""HTML: the main content (not menus and footers) as Markdown, keeping code blocks intact."""

from __future__ import annotations

import re
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from lorebase.knowledge.extract.base import Extracted
from lorebase.knowledge.extract.markdown import parse_markdown

# Not <form>: some frameworks (ASP.NET) wrap the whole page in one.
_DROP = (
    "script, style, noscript, template, svg, iframe, object, embed, canvas, button, "
    "select, input, textarea, nav, aside, [role=navigation], [role=banner], [role=contentinfo], "
    "[aria-hidden=true], .sidebar, .navbar, .toc, .breadcrumb, .breadcrumbs, .cookie-banner"
)
_BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "blockquote", "figure",
    "figcaption", "dl", "dt", "dd", "ul", "ol", "table", "thead", "tbody", "tfoot", "details",
    "summary", "address", "body", "center", "fieldset",
}  # fmt: skip
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_SPACE = re.compile(r"[ \t\r\n\f\v]+")
_LANGUAGE = re.compile(r"(?:^|\s)(?:language|lang|highlight)-([\w+#-]+)")
_MAX_DEPTH = 200


def _language(node: Any) -> str:
    for candidate in (node, node.css_first("code")):
        if candidate is None:
            continue
        match = _LANGUAGE.search(candidate.attributes.get("class") or "")
        if match:
            return match.group(1).lower()
        if candidate.attributes.get("data-lang"):
            return str(candidate.attributes["data-lang"]).lower()
    return ""


def _fence(code: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


class _Writer:
    def __init__(self) -> None:
        self.parts: list[str] = []

    def text(self, value: str) -> None:
        if value:
            self.parts.append(value)

    def newline(self, count: int = 1) -> None:
        self.parts.append("\n" * count)

    def render(self, node: Any, depth: int = 0) -> None:
        for child in node.iter(include_text=True):
            tag = child.tag
            if tag == "-text":
                self.text(_SPACE.sub(" ", child.text_content or ""))
            elif tag in ("-comment", None):
                continue
            elif depth > _MAX_DEPTH:
                self.text(_SPACE.sub(" ", child.text(deep=True)))
            elif tag in _HEADINGS:
                heading = _SPACE.sub(" ", child.text(deep=True)).strip()
                if heading:
                    self.newline(2)
                    self.text("#" * _HEADINGS[tag] + " " + heading)
                    self.newline(2)
            elif tag == "pre":
                code = child.text(deep=True).strip("\n")
                if code.strip():
                    fence = _fence(code)
                    self.newline(2)
                    self.text(f"{fence}{_language(child)}\n{code}\n{fence}")
                    self.newline(2)
            elif tag == "code":
                self.text("`" + _SPACE.sub(" ", child.text(deep=True)) + "`")
            elif tag == "br":
                self.newline()
            elif tag == "hr":
                self.newline(2)
            elif tag == "li":
                self.newline()
                self.text("- ")
                self.render(child, depth + 1)
            elif tag == "tr":
                cells = [
                    _SPACE.sub(" ", cell.text(deep=True)).strip()
                    for cell in child.iter()
                    if cell.tag in ("td", "th")
                ]
                if any(cells):
                    self.newline()
                    self.text("| " + " | ".join(cells) + " |")
            elif tag == "img":
                alt = (child.attributes.get("alt") or "").strip()
                if alt:
                    self.text(f"[image: {alt}]")
            elif tag in _BLOCK:
                self.newline(2)
                self.render(child, depth + 1)
                self.newline(2)
            else:
                self.render(child, depth + 1)

    def result(self) -> str:
        # Inside fences lines keep their indentation and blank lines; elsewhere whitespace
        # is collapsed and runs of blank lines become one.
        out: list[str] = []
        in_fence = ""
        for raw in "".join(self.parts).split("\n"):
            if in_fence:
                out.append(raw)
                if raw.strip() == in_fence:
                    in_fence = ""
                continue
            line = raw.strip()
            marker = re.match(r"^(`{3,})", line)
            if marker:
                in_fence = marker.group(1)
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip() + "\n"


def main_content(tree: LexborHTMLParser) -> Any:
    """The element holding the page's main content: <main>, role=main, <article>, #content,
    .content or <body>. A candidate holding less than a third of the page's text (a teaser
    <article>, a small <main> widget) is passed over for the next kind."""
    body = tree.body or tree.root
    if body is None:
        return None
    page_text = len(body.text(deep=True).strip()) or 1
    for selector in ("main", "[role=main]", "article", "#content", ".content"):
        candidates = tree.css(selector)
        if not candidates:
            continue
        best = max(candidates, key=lambda node: len(node.text(deep=True)))
        if len(best.text(deep=True).strip()) >= page_text / 3:
            return best
    return body


def html_to_markdown(html: str) -> tuple[str, str | None]:
    """(Markdown of the main content, page title)."""
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = _SPACE.sub(" ", title_node.text()).strip() if title_node else None
    for node in tree.css(_DROP):
        node.decompose()
    root = main_content(tree)
    # Page chrome inside <body> when there is no <main>/<article>.
    if root is not None and root.tag == "body":
        for node in root.css("header, footer"):
            node.decompose()
    writer = _Writer()
    if root is not None:
        writer.render(root)
    return writer.result(), title or None


def extract_html(data: str) -> Extracted:
    markdown, title = html_to_markdown(data)
    extracted = parse_markdown(markdown, format="html")
    extracted.title = title or extracted.title
    return extracted
