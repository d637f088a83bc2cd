"""PDF: text per page (page numbers kept) and the outline as section paths."""

from __future__ import annotations

import io
import logging
import re
import warnings
from typing import Any

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError, PdfReadError

from lorebase.knowledge.extract.base import Block, Extracted, ExtractionError, paragraph_blocks
from lorebase.knowledge.extract.limits import PDF_MAX_OBJECTS, PDF_MAX_PAGES

logging.getLogger("pypdf").setLevel(logging.ERROR)


def _outline(reader: PdfReader) -> list[tuple[int, tuple[str, ...]]]:
    """(0-based page, section path) for every outline entry, in page order."""
    entries: list[tuple[int, tuple[str, ...]]] = []

    def walk(items: list[Any], path: tuple[str, ...]) -> None:
        last: tuple[str, ...] = path
        for item in items:
            if isinstance(item, list):
                walk(item, last)
                continue
            title = str(getattr(item, "title", "") or "").strip()
            if not title:
                continue
            last = (*path, title)
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # noqa: S112 - a broken outline entry is skipped, not fatal
                continue
            if page is not None and page >= 0:
                entries.append((page, last))

    try:
        walk(list(reader.outline), ())
    except Exception:  # a damaged outline must not fail the document
        return []
    return sorted(entries, key=lambda entry: entry[0])


def _clean(page_text: str) -> str:
    lines = [line.rstrip() for line in page_text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _check_size(reader: PdfReader) -> None:
    objects = int(reader.trailer.get("/Size", 0) or 0)
    if objects > PDF_MAX_OBJECTS:
        raise ExtractionError(
            f"the PDF declares {objects:,} objects; the limit is {PDF_MAX_OBJECTS:,}"
        )
    pages = len(reader.pages)
    if pages > PDF_MAX_PAGES:
        raise ExtractionError(f"the PDF has {pages:,} pages; the limit is {PDF_MAX_PAGES:,}")


def extract_pdf(data: bytes) -> Extracted:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                try:
                    reader.decrypt("")
                except Exception:
                    raise ExtractionError(
                        "the PDF is encrypted with a password; upload an unprotected copy"
                    ) from None
            _check_size(reader)
            pages = [_clean(page.extract_text() or "") for page in reader.pages]
            outline = _outline(reader)
            meta_title = reader.metadata.title if reader.metadata else None
    except ExtractionError:
        raise
    except FileNotDecryptedError:
        raise ExtractionError(
            "the PDF is encrypted with a password; upload an unprotected copy"
        ) from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise ExtractionError(f"could not read the PDF (damaged or not a PDF): {reason}") from None
    if not any(pages):
        raise ExtractionError(
            "the PDF has no extractable text (scanned pages would need OCR, which is not supported)"
        )
    text_parts: list[str] = []
    blocks: list[Block] = []
    position = 0
    outline_index = 0
    section: tuple[str, ...] | None = None
    for number, page_text in enumerate(pages):
        while outline_index < len(outline) and outline[outline_index][0] <= number:
            section = outline[outline_index][1]
            outline_index += 1
        if text_parts:
            text_parts.append("\n\n")
            position += 2
        text_parts.append(page_text)
        for block in paragraph_blocks(page_text, 0, len(page_text)):
            blocks.append(
                Block(
                    "text",
                    position + block.start,
                    position + block.end,
                    page=number + 1,
                    section=section or (),
                )
            )
        position += len(page_text)
    text = "".join(text_parts)
    title = str(meta_title).strip() if meta_title else None
    return Extracted(
        text=text, blocks=blocks, format="pdf", title=title or None, metadata={"pages": len(pages)}
    )
