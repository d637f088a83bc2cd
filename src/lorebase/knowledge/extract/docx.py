"""DOCX: paragraphs and tables in document order, heading styles kept as Markdown headings."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph

from lorebase.knowledge.extract.base import Extracted, ExtractionError
from lorebase.knowledge.extract.limits import check_zip
from lorebase.knowledge.extract.markdown import parse_markdown

_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _heading_level(paragraph: Paragraph) -> int | None:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    if name.lower() == "title":
        return 1
    match = _HEADING.match(name.strip())
    return min(6, int(match.group(1))) if match else None


def _is_list(paragraph: Paragraph) -> bool:
    name = ((paragraph.style.name if paragraph.style is not None else "") or "").lower()
    return name.startswith("list") or (
        paragraph._p.pPr is not None and (paragraph._p.pPr.numPr is not None)
    )


def _table_lines(table: Table) -> list[str]:
    lines = []
    for row in table.rows:
        cells = [" ".join(cell.text.split()) for cell in row.cells]
        if any(cells):
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def docx_to_markdown(data: bytes) -> tuple[str, str | None]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            check_zip(archive, what="DOCX")
        document: Any = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise ExtractionError(f"could not read the DOCX file (damaged?): {reason}") from None
    parts: list[str] = []
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = paragraph.text.strip()
            if not text:
                continue
            level = _heading_level(paragraph)
            if level is not None:
                parts.append("#" * level + " " + " ".join(text.split()))
            elif _is_list(paragraph):
                parts.append("- " + text)
            else:
                parts.append(text)
        elif tag == "tbl":
            lines = _table_lines(Table(element, document))
            if lines:
                parts.append("\n".join(lines))
    title = (document.core_properties.title or "").strip() or None
    return "\n\n".join(parts) + "\n", title


def extract_docx(data: bytes) -> Extracted:
    markdown, title = docx_to_markdown(data)
    if not markdown.strip():
        raise ExtractionError("the DOCX file contains no text")
    extracted = parse_markdown(markdown, format="docx")
    extracted.title = title or extracted.title
    return extracted
