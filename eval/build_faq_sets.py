"""Build the FAQ development sets (BEIR layout) from FAQ documents shipped in Debian packages.

Each FAQ entry gives one query (its question) and one corpus document (its answer, the
question removed; the title is the FAQ's section heading, never the question). The qrels
judge the entry's own answer relevant (2). Every set is a real question -> answer collection
that users asked, not questions written to fit the documents.

    python eval/build_faq_sets.py            # writes eval/<set>/{corpus,queries}.jsonl, qrels/

Sets (not the Python FAQ nor the Debian FAQ: those are kept for independent checks):
- curl-faq      network transfer tool (package libcurl4-doc: /usr/share/doc/libcurl4/FAQ.gz)
- fetchmail-faq mail retrieval (package fetchmail: /usr/share/doc/fetchmail/fetchmail-FAQ.html)
- pyweb-faq     web framework and ORM (packages python-django-doc: html/faq/*.html and
                python-sqlalchemy-doc: rst/faq/*.rst)
- zsh-faq       command shell (package zsh-doc: /usr/share/doc/zsh-common/html/FAQ0*.html)

The packages are fetched with `apt-get download` and unpacked with `dpkg-deb -x` into a
temporary directory (nothing is installed). Their versions are written to each set's
`SOURCE` file so a rebuild can be compared.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ["libcurl4-doc", "fetchmail", "python-django-doc", "python-sqlalchemy-doc", "zsh-doc"]
MIN_ANSWER_WORDS = 12  # "Yes." is no document to retrieve
MIN_QUESTION_WORDS = 4  # "What is it?" needs the FAQ's context to mean anything


@dataclass(frozen=True)
class Entry:
    question: str
    answer: str
    section: str


def _unpack(workdir: Path) -> dict[str, str]:
    """Download and unpack the packages; their versions by name."""
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=workdir, check=True)  # noqa: S603, S607
    versions: dict[str, str] = {}
    for deb in sorted(workdir.glob("*.deb")):
        unpack = ["dpkg-deb", "-x", str(deb), str(workdir / "root")]
        subprocess.run(unpack, check=True)  # noqa: S603
        name, version = deb.name.split("_")[:2]
        versions[name] = version.replace("%3a", ":")
    return versions


def _clean(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _html_text(fragment: str) -> str:
    fragment = re.sub(r"<(script|style)\b.*?</\1>", "", fragment, flags=re.S)
    fragment = re.sub(r"<a class=\"headerlink\".*?</a>", "", fragment, flags=re.S)
    fragment = re.sub(
        r"</?(p|div|pre|li|ul|ol|dl|dt|dd|blockquote|table|tr|h\d)\b[^>]*>", "\n", fragment
    )
    fragment = re.sub(r"<br\s*/?>", "\n", fragment)
    return _clean(html.unescape(re.sub(r"<[^>]+>", "", fragment)))


def curl_entries(root: Path) -> Iterator[Entry]:
    text = gzip.decompress((root / "usr/share/doc/libcurl4/FAQ.gz").read_bytes()).decode()
    lines = text.splitlines()
    # The body starts where the table of contents' first question is repeated.
    question = re.compile(r"^  (\d+\.\d+) (\S.*)$")
    section_line = re.compile(r"^ (\d+)\. (\S.*)$")
    seen: set[str] = set()
    start = 0
    for i, line in enumerate(lines):
        m = question.match(line)
        if m and m.group(1) in seen:
            start = i
            break
        if m:
            seen.add(m.group(1))
    sections: dict[str, str] = {}
    for line in lines[:start]:
        m = section_line.match(line)
        if m:
            sections[m.group(1)] = m.group(2).strip()
    current: tuple[str, str] | None = None
    body: list[str] = []
    for line in [*lines[start:], "  999.1 end"]:
        m = question.match(line)
        if m or section_line.match(line):
            if current is not None:
                yield Entry(current[1], _clean("\n".join(body)), current[0])
                current = None
            if m:
                current = (sections.get(m.group(1).split(".")[0], ""), m.group(2).strip())
                body = []
            continue
        body.append(line)


def fetchmail_entries(root: Path) -> Iterator[Entry]:
    page = (root / "usr/share/doc/fetchmail/fetchmail-FAQ.html").read_text(errors="replace")
    sections = {
        m.group(1): _html_text(m.group(2))
        for m in re.finditer(r'<h2 id="C_([A-Z])">(.*?)</h2>', page, flags=re.S)
    }
    heads = list(re.finditer(r'<h2><a id="([A-Z]+)(\d+)" name="[^"]*">(.*?)</a></h2>', page, re.S))
    for i, m in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(page)
        chunk = page[m.end() : end]
        chunk = re.split(r"<hr\b|</body>", chunk)[0]
        question = _html_text(m.group(3))
        question = re.sub(r"^[A-Z]+\d+\.\s*", "", " ".join(question.split()))
        yield Entry(question, _html_text(chunk), sections.get(m.group(1), ""))


def django_entries(root: Path) -> Iterator[Entry]:
    for path in sorted((root / "usr/share/doc/python-django-doc/html/faq").glob("*.html")):
        if path.name == "index.html":
            continue
        page = path.read_text(errors="replace")
        h1 = re.search(r'<h1>([^<]*)<a class="headerlink"', page)
        section = html.unescape(h1.group(1)).strip() if h1 else ""
        page = page[: page.find('<h3><a href="../contents.html"')]
        heads = list(re.finditer(r"<h2>(.*?)</h2>", page, flags=re.S))
        for i, m in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(page)
            yield Entry(
                " ".join(_html_text(m.group(1)).split()), _html_text(page[m.end() : end]), section
            )


def zsh_entries(root: Path) -> Iterator[Entry]:
    for path in sorted((root / "usr/share/doc/zsh-common/html").glob("FAQ0*.html")):
        page = path.read_text(errors="replace")
        h1 = re.search(r"<h1 >(.*?)</h1>", page, flags=re.S)
        section = re.sub(r"^Chapter \d+:\s*", "", _html_text(h1.group(1))) if h1 else ""
        page = page[: page.rfind("<hr>", 0, page.rfind("<hr>"))]
        heads = list(re.finditer(r"<h2 >(.*?)</h2>", page, flags=re.S))
        for i, m in enumerate(heads):
            end = heads[i + 1].start() if i + 1 < len(heads) else len(page)
            question = re.sub(r"^\d+\.\d+:\s*", "", " ".join(_html_text(m.group(1)).split()))
            yield Entry(question, _html_text(page[m.end() : end]), section)


_RST_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?\.?([^`<]*?)(?:\s*<[^>]*>)?`")


def _rst_text(text: str) -> str:
    text = _RST_ROLE.sub(r"\1", text)
    text = text.replace("``", "`")
    return _clean(re.sub(r"^\.\. (contents|_[^:]+)::?.*$", "", text, flags=re.M))


def sqlalchemy_entries(root: Path) -> Iterator[Entry]:
    for path in sorted((root / "usr/share/doc/python-sqlalchemy-doc/rst/faq").glob("*.rst")):
        if path.name == "index.rst":
            continue
        lines = path.read_text().splitlines()
        titles: list[tuple[int, str, str]] = []  # (line, title, underline char)
        for i in range(1, len(lines)):
            under = lines[i]
            if (
                re.fullmatch(r"([=\-~^*])\1{3,}", under)
                and lines[i - 1].strip()
                and len(under) >= len(lines[i - 1].rstrip())
                and not (i >= 2 and lines[i - 2] == under)
            ):
                titles.append((i - 1, lines[i - 1].strip(), under[0]))
        if len(titles) < 2:
            continue
        section, level = titles[0][1], titles[1][2]
        questions = [t for t in titles[1:] if t[2] == level]
        for j, (line, title, _) in enumerate(questions):
            end = questions[j + 1][0] if j + 1 < len(questions) else len(lines)
            yield Entry(_rst_text(title), _rst_text("\n".join(lines[line + 2 : end])), section)


SETS = {
    "curl-faq": [curl_entries],
    "fetchmail-faq": [fetchmail_entries],
    "pyweb-faq": [django_entries, sqlalchemy_entries],
    "zsh-faq": [zsh_entries],
}
SOURCES = {
    "curl-faq": ["libcurl4-doc"],
    "fetchmail-faq": ["fetchmail"],
    "pyweb-faq": ["python-django-doc", "python-sqlalchemy-doc"],
    "zsh-faq": ["zsh-doc"],
}


def write_set(name: str, entries: list[Entry], versions: dict[str, str]) -> int:
    out = HERE / name
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    prefix = name.split("-")[0]
    kept: list[tuple[str, Entry]] = []
    seen: set[str] = set()
    for entry in entries:
        key = entry.question.casefold()
        if (
            len(entry.answer.split()) < MIN_ANSWER_WORDS
            or len(entry.question.split()) < MIN_QUESTION_WORDS
            or key in seen
        ):
            continue
        seen.add(key)
        kept.append((f"{prefix}-{len(kept) + 1:03d}", entry))
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc_id, entry in kept:
            row = {"_id": doc_id, "title": entry.section, "text": entry.answer}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for doc_id, entry in kept:
            row = {"_id": f"q-{doc_id}", "text": entry.question, "metadata": {"kind": "natural"}}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for doc_id, _ in kept:
            handle.write(f"q-{doc_id}\t{doc_id}\t2\n")
    source = "\n".join(f"{p} {versions.get(p, '?')}" for p in SOURCES[name])
    (out / "SOURCE").write_text(source + "\n")
    return len(kept)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        versions = _unpack(workdir)
        total = 0
        for name, parsers in SETS.items():
            entries = [e for parse in parsers for e in parse(workdir / "root")]
            count = write_set(name, entries, versions)
            total += count
            print(f"{name}: {count} questions", file=sys.stderr)
        print(f"total: {total} questions", file=sys.stderr)


if __name__ == "__main__":
    main()
