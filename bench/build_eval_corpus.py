"""Build the BEIR corpus of `tests/data/pydoc-qa` from Python's own documentation topics.

`pydoc_data.topics` ships with CPython (the text of `help('TOPIC')`, from the Python
documentation, PSF licence). Each topic is cut at its section headings; long sections are
cut again at paragraph boundaries. Run once; the corpus is committed, so the evaluation does
not change with the Python version. Queries and relevance labels are written by hand.

    .venv/bin/python bench/build_eval_corpus.py tests/data/pydoc-qa
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from pydoc_data.topics import topics

MAX_CHARS = 1800
MIN_CHARS = 250
_UNDERLINE = re.compile(r"^([*=\-~^\"])\1{2,}\s*$")


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) pairs; a heading is a line underlined with a run of one symbol."""
    lines = text.splitlines()
    out: list[tuple[str, list[str]]] = []
    heading = ""
    body: list[str] = []
    i = 0
    while i < len(lines):
        if (
            i + 1 < len(lines)
            and lines[i].strip()
            and _UNDERLINE.match(lines[i + 1])
            and len(lines[i + 1].strip()) >= len(lines[i].strip()) - 2
        ):
            if any(line.strip() for line in body):
                out.append((heading, body))
            heading, body = lines[i].strip(), []
            i += 2
            continue
        body.append(lines[i])
        i += 1
    if any(line.strip() for line in body):
        out.append((heading, body))
    return [(h, "\n".join(b).strip()) for h, b in out]


def pieces(body: str) -> list[str]:
    """Paragraph groups of at most MAX_CHARS (a longer paragraph stands alone)."""
    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    out: list[str] = []
    current = ""
    for paragraph in paragraphs:
        if current and len(current) + len(paragraph) + 2 > MAX_CHARS:
            out.append(current)
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        out.append(current)
    # Fold a short tail into the piece before it.
    if len(out) > 1 and len(out[-1]) < MIN_CHARS:
        tail = out.pop()
        out[-1] = out[-1] + "\n\n" + tail
    return out


def _key(paragraph: str) -> str:
    return " ".join(paragraph.split())


def dedupe(text: str, seen: set[str]) -> str:
    """`text` without the paragraphs an earlier topic already had (topics overlap: e.g.
    `compound` repeats `if`, `while`, `try`...)."""
    kept = []
    for paragraph in re.split(r"\n\s*\n", text):
        key = _key(paragraph)
        if len(key) > 80 and key in seen:
            continue
        seen.add(key)
        kept.append(paragraph)
    return "\n\n".join(kept)


def build() -> list[dict[str, str]]:
    docs: list[dict[str, str]] = []
    seen: set[str] = set()
    # Smaller topics first: an aggregate topic keeps only what no smaller one has.
    order = sorted(topics, key=lambda t: (len(topics[t]), t))
    for topic in order:
        parts = sections(dedupe(topics[topic], seen))
        # Merge sections too short to stand alone into the one before.
        merged: list[tuple[str, str]] = []
        for heading, body in parts:
            if merged and len(body) < MIN_CHARS:
                prev_heading, prev_body = merged[-1]
                merged[-1] = (prev_heading, f"{prev_body}\n\n{heading}\n\n{body}".strip())
            else:
                merged.append((heading, body))
        number = 0
        for heading, body in merged:
            for piece in pieces(body):
                if len(piece) < 120:  # a heading or a stray line: nothing to retrieve
                    continue
                number += 1
                docs.append({"_id": f"{topic}-{number}", "title": heading or topic, "text": piece})
    return docs


def main() -> None:
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    docs = sorted(build(), key=lambda d: d["_id"])
    with (target / "corpus.jsonl").open("w") as handle:
        for doc in docs:
            handle.write(json.dumps(doc, ensure_ascii=False) + "\n")
    print(f"{len(docs)} documents, {sum(len(d['text']) for d in docs)} characters")


if __name__ == "__main__":
    main()
