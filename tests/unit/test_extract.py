"""Every format extracts to text + structure, from sample files generated here."""

from __future__ import annotations

import pytest

from lorebase.knowledge.extract import ExtractionError, extract
from lorebase.knowledge.extract.code import language_for
from lorebase.knowledge.pipeline import Source, extract_source
from tests import samples


def headings(doc: object) -> list[tuple[int, str | None]]:
    return [(b.level, b.title) for b in doc.blocks if b.kind == "heading"]  # type: ignore[attr-defined]


def test_markdown_headings_code_and_front_matter() -> None:
    doc = extract("markdown", text="---\ntitle: Handbook v2\n---\n" + samples.MARKDOWN)
    assert doc.title == "Handbook v2"
    assert headings(doc) == [(1, "Handbook"), (2, "Onboarding"), (2, "Holidays")]
    code = [b for b in doc.blocks if b.kind == "code"]
    assert len(code) == 1
    assert code[0].language == "python"
    assert doc.block_text(code[0]).startswith("```python\ndef welcome")


def test_markdown_setext_headings() -> None:
    doc = extract("markdown", text="Title\n=====\n\nIntro.\n\nPart\n----\n\nBody.\n")
    assert headings(doc) == [(1, "Title"), (2, "Part")]


def test_text_paragraphs() -> None:
    doc = extract("text", data=b"first paragraph\nstill first\n\nsecond\n")
    assert [doc.block_text(b) for b in doc.blocks] == ["first paragraph\nstill first", "second"]


def test_html_keeps_main_content_and_code() -> None:
    doc = extract("html", data=samples.HTML.encode())
    assert doc.title == "Kettle manual"
    assert "Home" not in doc.text
    assert "Copyright" not in doc.text
    assert headings(doc) == [(1, "Kettle manual"), (2, "Descaling")]
    code = [b for b in doc.blocks if b.kind == "code"]
    assert code[0].language == "bash"
    assert "descale --acid citric --minutes 15" in doc.block_text(code[0])


def test_pdf_pages_and_outline() -> None:
    data = samples.pdf_bytes(
        [("Intro", "Solar panels convert light."), ("Maintenance", "Clean panels yearly.")]
    )
    doc = extract("pdf", data=data)
    assert doc.metadata["pages"] == 2
    pages = {b.page for b in doc.blocks}
    assert pages == {1, 2}
    second = next(b for b in doc.blocks if "yearly" in doc.block_text(b))
    assert second.page == 2
    assert second.section == ("Maintenance",)


def test_corrupt_pdf_is_a_readable_error() -> None:
    data = samples.pdf_bytes([("Intro", "text")])
    with pytest.raises(ExtractionError, match="could not read the PDF"):
        extract("pdf", data=data[: len(data) // 3])


def test_pdf_without_text_is_a_readable_error() -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    with pytest.raises(ExtractionError, match="no extractable text"):
        extract("pdf", data=bytes(pdf.output()))


def test_docx_headings_and_tables() -> None:
    doc = extract("docx", data=samples.docx_bytes())
    assert headings(doc) == [(1, "Runbook"), (2, "Paging")]
    assert "| SEV1 | 15 minutes |" in doc.text


def test_corrupt_docx_is_a_readable_error() -> None:
    with pytest.raises(ExtractionError, match="DOCX"):
        extract("docx", data=b"PK\x03\x04 not really a zip")


def test_python_splits_at_top_level_definitions() -> None:
    doc = extract("code", text=samples.PYTHON, language="python")
    symbols = [b.title for b in doc.blocks]
    assert "net_price" in symbols
    assert "Invoice" in symbols
    invoice = next(b for b in doc.blocks if b.title == "Invoice")
    assert "def rounded" in doc.block_text(invoice), "methods stay with their class"
    net = next(b for b in doc.blocks if b.title == "net_price")
    assert doc.block_text(net).startswith("def net_price")


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("app.js", "greet"),
        ("main.go", "main"),
        ("lib.rs", "parse"),
        ("Main.java", "Main"),
        ("util.c", "add"),
        ("types.ts", "User"),
    ],
)
def test_source_files_of_other_languages(name: str, symbol: str) -> None:
    language = language_for(name)
    assert language is not None
    doc = extract("code", text=samples.SOURCES[name], language=language)
    assert symbol in [b.title for b in doc.blocks]


def test_json_and_yaml_become_path_value_lines() -> None:
    for fmt, data in (("json", samples.json_bytes()), ("yaml", samples.yaml_bytes())):
        doc = extract(fmt, data=data)
        assert "service.port: 8080" in doc.text
        assert "owners: ana, li" in doc.text
        assert {b.section for b in doc.blocks} == {("service",), ("owners",)}


def test_invalid_json_and_yaml_name_the_position() -> None:
    with pytest.raises(ExtractionError, match=r"invalid JSON at line 1, column \d+"):
        extract("json", data=b'{"a": ')
    with pytest.raises(ExtractionError, match="invalid YAML at line"):
        extract("yaml", data=b"a: [1, 2\nb: }\n")


def test_yaml_alias_bomb_is_refused() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        bomb += f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 10) + "]\n"
    with pytest.raises(ExtractionError, match="too much text"):
        extract("yaml", data=bomb.encode())


def test_csv_rows_with_header_names() -> None:
    doc = extract("csv", data=samples.CSV.encode())
    assert doc.text.splitlines() == [
        "name: Ana; role: engineer; team: billing",
        "name: Li; role: designer; team: search",
    ]
    assert doc.metadata["columns"] == ["name", "role", "team"]


def test_html_main_content_is_not_a_teaser_and_survives_page_wide_forms() -> None:
    article = "The real article explains the rollout in detail. " * 20
    html = (
        "<html><body><form id='aspnetForm'><header>Site header</header>"
        f"<div><h1>Rollout</h1><p>{article}</p></div>"
        "<aside><article><p>Related: a teaser</p></article></aside>"
        "<footer>Footer links</footer></form></body></html>"
    )
    doc = extract("html", data=html.encode())
    assert "explains the rollout" in doc.text
    assert "teaser" not in doc.text
    assert headings(doc) == [(1, "Rollout")]


async def test_extraction_past_its_time_limit_fails_readably() -> None:
    slow = Source(format="markdown", text=samples.MARKDOWN * 20_000)
    with pytest.raises(ExtractionError, match=r"took longer than 0\.001s"):
        await extract_source(slow, limit_seconds=0.001)
