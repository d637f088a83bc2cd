"""Turn a document's bytes or text into `Extracted` text + structure, by format."""

from __future__ import annotations

from lorebase.content import BINARY_FORMATS, FORMATS
from lorebase.knowledge.extract.base import Block, Extracted, ExtractionError, decode_text
from lorebase.knowledge.extract.code import extract_code
from lorebase.knowledge.extract.docx import extract_docx
from lorebase.knowledge.extract.html import extract_html
from lorebase.knowledge.extract.limits import check_text_size
from lorebase.knowledge.extract.markdown import extract_markdown
from lorebase.knowledge.extract.pdf import extract_pdf
from lorebase.knowledge.extract.structured import extract_csv, extract_json, extract_yaml
from lorebase.knowledge.extract.text import extract_text

__all__ = ["BINARY_FORMATS", "FORMATS", "Block", "Extracted", "ExtractionError", "extract"]


def extract(
    format: str, *, data: bytes | None = None, text: str | None = None, language: str | None = None
) -> Extracted:
    """Blocking (CPU-bound): call it through `asyncio.to_thread`."""
    if format in BINARY_FORMATS:
        if data is None:
            raise ExtractionError(f"a {format} document needs its original file")
        return extract_pdf(data) if format == "pdf" else extract_docx(data)
    if text is None:
        if data is None:
            raise ExtractionError("the document has no content")
        decoded = decode_text(data)
        if decoded is None:
            raise ExtractionError("the file is not text in any encoding we recognise")
        text = decoded.replace("\r\n", "\n").replace("\r", "\n")
    check_text_size(text, what=format.upper() if format == "html" else format)
    if format == "html":
        return extract_html(text)
    if format == "code":
        return extract_code(text, language=language)
    if format == "json":
        return extract_json(text)
    if format == "yaml":
        return extract_yaml(text)
    if format == "csv":
        return extract_csv(text, delimiter="\t" if language == "tsv" else None)
    if format == "text":
        return extract_text(text)
    return extract_markdown(text)
