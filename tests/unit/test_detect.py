"""File types come from the content first; names that lie are refused."""

from __future__ import annotations

import io
import zipfile

import pytest

from lorebase.knowledge.detect import UnsupportedFile, detect_file
from tests import samples

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("notes.md", b"# Notes\n", "markdown"),
        ("notes.txt", b"plain words\n", "text"),
        ("README", b"plain words\n", "text"),
        ("page.html", samples.HTML.encode(), "html"),
        ("page", samples.HTML.encode(), "html"),
        ("data.json", samples.json_bytes(), "json"),
        ("export", samples.json_bytes(), "json"),
        ("config.yml", samples.yaml_bytes(), "yaml"),
        ("people.csv", samples.CSV.encode(), "csv"),
        ("billing.py", samples.PYTHON.encode(), "code"),
        ("Dockerfile", b"FROM python:3.11\n", "code"),
        ("report.pdf", samples.pdf_bytes([("A", "b")]), "pdf"),
        ("report", samples.pdf_bytes([("A", "b")]), "pdf"),
        ("runbook.docx", samples.docx_bytes(), "docx"),
    ],
)
def test_detects_supported_formats(name: str, data: bytes, expected: str) -> None:
    assert detect_file(name, data).format == expected


def test_code_language_and_decoded_text() -> None:
    detected = detect_file("billing.py", samples.PYTHON.encode())
    assert detected.language == "python"
    assert detected.text == samples.PYTHON


def test_legacy_encodings_and_crlf_are_decoded() -> None:
    french = (
        "Le café crème est servi à la terrasse. Les élèves préfèrent le thé glacé, "
        "mais le garçon apporte des crêpes et des gâteaux à côté de la fenêtre.\r\n"
    ) * 3
    detected = detect_file("notes.txt", french.encode("cp1252"))
    assert detected.text == french.replace("\r\n", "\n")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("report.pdf", b"# not a pdf\n", "not a PDF"),
        ("notes.md", samples.pdf_bytes([("A", "b")]), "contains a PDF but is named .md"),
        ("runbook.docx", b"plain text", "not a Word document"),
        ("photo.md", PNG, "unsupported file type"),
        ("photo.png", b"just text", "named .png but its content is text"),
        ("data.json", b"hello world", "not JSON"),
        ("empty.md", b"  \n", "is empty"),
    ],
)
def test_unsupported_or_lying_files_are_refused(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(UnsupportedFile, match=reason):
        detect_file(name, data)


def test_zip_archives_are_not_word_documents() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(UnsupportedFile, match="ZIP archive"):
        detect_file("bundle", buffer.getvalue())
