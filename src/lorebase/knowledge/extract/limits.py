"""Bounds on what a compressed or structured file may unpack to, checked before parsing.

A 1 MB DOCX can hold a 1 GB member, a 1 MB gzip a 1 GB sitemap: the size on the wire says
nothing about the memory a parser will need. Every limit here is stated in its error message,
which becomes the failed job's message.
"""

from __future__ import annotations

import zipfile
import zlib

from lorebase.knowledge.extract.base import ExtractionError

MIB = 1024 * 1024
# Office files: their XML members unpacked together, and each member's compression ratio.
# Ordinary DOCX text compresses 5-20x; 100x and more is what padding and bombs look like.
ZIP_MAX_UNPACKED_BYTES = 200 * MIB
ZIP_MAX_RATIO = 100
ZIP_RATIO_MIN_BYTES = MIB  # members smaller than this may compress as well as they like
ZIP_MAX_MEMBERS = 10_000
# PDF: pages and indirect objects (pypdf bounds each stream's output at 75 MB by itself).
PDF_MAX_PAGES = 5_000
PDF_MAX_OBJECTS = 2_000_000
# Text formats (HTML, Markdown...) after decoding, in characters.
TEXT_MAX_CHARS = 50_000_000


def _words(size: int) -> str:
    return f"{size / MIB:g} MiB" if size >= MIB else f"{size} bytes"


def check_zip(archive: zipfile.ZipFile, *, what: str) -> None:
    """Refuse an archive whose members would unpack past the limits, before reading any.

    Declared sizes are enough: `zipfile` stops a member at its declared size (and fails on
    the CRC), so a member cannot unpack to more than it claims."""
    members = archive.infolist()
    if len(members) > ZIP_MAX_MEMBERS:
        raise ExtractionError(
            f"the {what} file has {len(members)} parts; the limit is {ZIP_MAX_MEMBERS}"
        )
    total = sum(member.file_size for member in members)
    if total > ZIP_MAX_UNPACKED_BYTES:
        raise ExtractionError(
            f"the {what} file unpacks to {_words(total)}; the limit is "
            f"{_words(ZIP_MAX_UNPACKED_BYTES)} (a compressed file this large is refused)"
        )
    for member in members:
        if member.file_size < ZIP_RATIO_MIN_BYTES:
            continue
        ratio = member.file_size / max(1, member.compress_size)
        if ratio > ZIP_MAX_RATIO:
            raise ExtractionError(
                f"the {what} file's part {member.filename[:100]} is compressed {ratio:.0f} to 1; "
                f"the limit is {ZIP_MAX_RATIO} to 1 (this looks like a decompression bomb)"
            )


def gunzip_capped(data: bytes, *, max_bytes: int) -> bytes | None:
    """`data` un-gzipped, never more than `max_bytes` out (the rest is dropped unread);
    None when it is not valid gzip."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return decompressor.decompress(data, max_bytes)
    except zlib.error:
        return None


def check_text_size(text: str, *, what: str) -> None:
    """Refuse a decoded text past TEXT_MAX_CHARS before parsing it."""
    if len(text) > TEXT_MAX_CHARS:
        raise ExtractionError(
            f"the {what} text is {len(text):,} characters after decoding; "
            f"the limit is {TEXT_MAX_CHARS:,}"
        )
