"""JSON, YAML and CSV as readable text: one `path: value` line per leaf, one row per line."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import yaml

from lorebase.knowledge.extract.base import Block, Extracted, ExtractionError

_MAX_EXPANSION = 20  # rendered text may be at most this many times the source (YAML aliases)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


class _Renderer:
    def __init__(self, limit: int) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.limit = limit

    def add(self, line: str) -> None:
        self.size += len(line) + 1
        if self.size > self.limit:
            raise ExtractionError("the data expands to too much text (recursive YAML aliases?)")
        self.lines.append(line)

    def walk(self, value: Any, path: str, depth: int = 0) -> None:
        if depth > 100:
            raise ExtractionError("the data is nested more than 100 levels deep")
        if isinstance(value, dict):
            if not value:
                self.add(f"{path}: {{}}")
            for key, item in value.items():
                self.walk(item, f"{path}.{key}" if path else str(key), depth + 1)
        elif isinstance(value, list):
            if not value:
                self.add(f"{path}: []")
            elif all(not isinstance(item, dict | list) for item in value):
                self.add(f"{path}: " + ", ".join(_scalar(item) for item in value))
            else:
                for index, item in enumerate(value):
                    self.walk(item, f"{path}[{index}]", depth + 1)
        else:
            self.add(f"{path}: {_scalar(value)}" if path else _scalar(value))


def render_data(documents: list[Any], *, format: str, source_size: int) -> Extracted:
    """Top-level keys (or list items) become sections; each leaf becomes one line."""
    renderer = _Renderer(limit=max(1_000_000, source_size * _MAX_EXPANSION))
    groups: list[tuple[tuple[str, ...], int, int]] = []
    for number, document in enumerate(documents):
        prefix = f"[doc {number + 1}] " if len(documents) > 1 else ""
        if isinstance(document, dict) and document:
            items: list[tuple[str, Any]] = [(str(key), value) for key, value in document.items()]
        elif isinstance(document, list) and document:
            items = [(f"[{index}]", value) for index, value in enumerate(document)]
        else:
            items = [("", document)]
        for key, value in items:
            first = len(renderer.lines)
            renderer.walk(value, key)
            section: tuple[str, ...] = (prefix + key,) if key else ()
            groups.append((section, first, len(renderer.lines)))
    lines = renderer.lines
    text_parts: list[str] = []
    blocks: list[Block] = []
    position = 0
    for section, first, last in groups:
        for line in lines[first:last]:
            blocks.append(Block("text", position, position + len(line), section=section))
            text_parts.append(line)
            position += len(line) + 1
    return Extracted(text="\n".join(text_parts), blocks=blocks, format=format)


def extract_json(data: str) -> Extracted:
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ExtractionError(
            f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    return render_data([value], format="json", source_size=len(data))


def extract_yaml(data: str) -> Extracted:
    try:
        documents = [doc for doc in yaml.safe_load_all(data) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ExtractionError(f"invalid YAML{where}: {problem}") from None
    if not documents:
        raise ExtractionError("the YAML file is empty")
    return render_data(documents, format="yaml", source_size=len(data))


def extract_csv(data: str, *, delimiter: str | None = None) -> Extracted:
    sample = data[:20_000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=delimiter or ",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if delimiter == "\t" else csv.excel
    try:
        rows = list(csv.reader(io.StringIO(data), dialect))
    except csv.Error as exc:
        raise ExtractionError(f"invalid CSV: {exc}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise ExtractionError("the CSV file is empty")
    try:
        has_header = csv.Sniffer().has_header(sample)
    except csv.Error:
        has_header = True
    header = [cell.strip() or f"column {i + 1}" for i, cell in enumerate(rows[0])]
    body = rows[1:] if has_header else rows
    if not has_header:
        header = [f"column {i + 1}" for i in range(max(len(row) for row in rows))]
    lines = []
    for row in body:
        pairs = [
            f"{header[i] if i < len(header) else f'column {i + 1}'}: {' '.join(cell.split())}"
            for i, cell in enumerate(row)
            if cell.strip()
        ]
        lines.append("; ".join(pairs))
    blocks = []
    position = 0
    for line in lines:
        blocks.append(Block("text", position, position + len(line)))
        position += len(line) + 1
    return Extracted(
        text="\n".join(lines),
        blocks=blocks,
        format="csv",
        metadata={"columns": header, "rows": len(body)},
    )
