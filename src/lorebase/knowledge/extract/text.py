"""Plain text: paragraphs separated by blank lines."""

from __future__ import annotations

from lorebase.knowledge.extract.base import Extracted, paragraph_blocks


def extract_text(data: str) -> Extracted:
    text = data.replace("\r\n", "\n").replace("\r", "\n")
    return Extracted(text=text, blocks=paragraph_blocks(text, 0, len(text)), format="text")
