"""Decompression bombs (issue 14): each is a real one, built here a MiB at a time, and fails
cleanly with its limit in words while the Python heap stays under BOUND (tracemalloc peak)."""

from __future__ import annotations

import dataclasses
import io
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import docx
import httpx
import pytest

from lorebase.context import AppContext
from lorebase.knowledge.extract import ExtractionError, extract
from lorebase.knowledge.extract.limits import gunzip_capped
from lorebase.main import create_app
from tests.factories import create_project, register_user
from tests.ingestion import drain, job_of, upload
from tests.loopback_site import LoopbackSite, Route

MIB = 1024 * 1024
GIB = 1024 * MIB
ZEROS = bytes(MIB)
BOUND = 64 * MIB  # the bombs unpack to 1 GB; refusing them must not come near it


def _peak(work: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        try:
            result: Any = work()
        except ExtractionError as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _docx_bytes() -> bytes:
    document = docx.Document()
    document.add_heading("Quarterly report", level=1)
    document.add_paragraph("Revenue grew in every region this quarter.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _deflate_gigabyte(head: bytes) -> tuple[bytes, int, int]:
    """Raw deflate of `head` + 1 GB of zeros as (data, crc32, size), in about a second: after
    a full flush the compressor forgets its window, so every MiB of zeros deflates to the
    same bytes, which are computed once and repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(ZEROS) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush()
    crc = zlib.crc32(head)
    for _ in range(GIB // MIB):
        crc = zlib.crc32(ZEROS, crc)
    return first + block * (GIB // MIB) + tail, crc, len(head) + GIB


def _zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A ZIP of (name, raw deflate data, crc32, unpacked size) members, written by hand so
    a member's deflate stream can be made as above (`zipfile` would deflate 1 GB)."""
    out = io.BytesIO()
    central = io.BytesIO()
    for name, data, crc, size in members:
        offset = out.tell()
        encoded = name.encode()
        fields = (20, 0, 8, 0, 33, crc, len(data), size, len(encoded))
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + encoded + data)
        central.write(
            struct.pack("<IH", 0x02014B50, 20)
            + struct.pack("<HHHHHIIIHHHHHII", *fields, 0, 0, 0, 0, 0, offset)
            + encoded
        )
    directory = central.getvalue()
    count = len(members)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), out.tell(), 0)
    return out.getvalue() + directory + end


def _member(name: str, content: bytes) -> tuple[str, bytes, int, int]:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = compressor.compress(content) + compressor.flush()
    return name, data, zlib.crc32(content), len(content)


def _docx_bomb(member: str) -> bytes:
    """A real DOCX with `member` (added, or replacing the original) unpacking to 1 GB."""
    original = zipfile.ZipFile(io.BytesIO(_docx_bytes()))
    members = [
        _member(info.filename, original.read(info))
        for info in original.infolist()
        if info.filename != member
    ]
    head = b'<?xml version="1.0"?>' if member.endswith(".xml") else b""
    members.append((member, *_deflate_gigabyte(head)))
    return _zip(members)


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    return {
        "extra-member": _docx_bomb("word/media/padding.bin"),
        "document-xml": _docx_bomb("word/document.xml"),
    }


@pytest.mark.parametrize("kind", ["extra-member", "document-xml"])
def test_docx_bomb_is_refused_before_parsing(bombs: dict[str, bytes], kind: str) -> None:
    data = bombs[kind]
    assert len(data) < 2 * MIB, "the bomb is small on the wire"
    result, peak = _peak(lambda: extract("docx", data=data))
    assert isinstance(result, ExtractionError), result
    assert "limit is" in str(result)
    assert peak < BOUND + len(data), f"peak {peak / MIB:.0f} MiB"


def test_an_ordinary_docx_still_reads() -> None:
    extracted = extract("docx", data=_docx_bytes())
    assert "Revenue grew" in extracted.text


async def test_docx_bomb_fails_its_job_with_the_limit_in_words(
    ctx: AppContext, client: httpx.AsyncClient, bombs: dict[str, bytes]
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    response = await upload(
        client, user.headers, project["id"], ("report.docx", bombs["document-xml"])
    )
    assert response.status_code == 202, response.text
    await drain(ctx)
    job = await job_of(client, user.headers, response.json()["job_id"])
    assert job["status"] == "failed"
    assert "report.docx" in job["error"]
    assert "the limit is" in job["error"]
    assert "internal error" not in job["error"]


def _gzip_bomb(head: bytes) -> bytes:
    data, crc, size = _deflate_gigabyte(head)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + data + struct.pack("<II", crc, size & 0xFFFFFFFF)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    head = b"<?xml version='1.0'?><urlset><url><loc>{base}/docs/x</loc></url>"
    return _gzip_bomb(head)


def test_gzip_is_unpacked_to_the_cap_only(gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 2 * MIB
    result, peak = _peak(lambda: gunzip_capped(gzip_bomb, max_bytes=25 * MIB))
    assert len(result) == 25 * MIB
    assert peak < 25 * MIB + BOUND
    assert gunzip_capped(b"\x1f\x8bnot gzip", max_bytes=10) is None


@pytest.fixture
def bomb_site(gzip_bomb: bytes) -> Iterator[LoopbackSite]:
    site = LoopbackSite()
    site.routes["/robots.txt"] = Route(
        "User-agent: *\nSitemap: {base}/sitemap.xml.gz\n", content_type="text/plain"
    )
    site.routes["/sitemap.xml.gz"] = Route(gzip_bomb, content_type="application/octet-stream")
    site.page("/", "<h1>Home</h1><p>The home page of a site with a large sitemap.</p>")
    yield site
    site.stop()


async def test_crawler_survives_a_gzipped_sitemap_bomb(
    ctx: AppContext, bomb_site: LoopbackSite
) -> None:
    settings = ctx.settings.model_copy(
        update={"crawl_allow_private_networks": ["127.0.0.0/8"], "crawl_delay_seconds": 0.0}
    )
    crawl_ctx = dataclasses.replace(ctx, settings=settings)
    app = create_app(context=crawl_ctx)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as http,
    ):
        user = await register_user(http)
        project = await create_project(http, user.headers)
        response = await http.post(
            "/api/v1/knowledge/crawl",
            json={"project_id": project["id"], "url": bomb_site.base + "/", "max_depth": 1},
            headers=user.headers,
        )
        assert response.status_code == 202, response.text
        tracemalloc.start()
        try:
            await drain(crawl_ctx)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        job = await job_of(http, user.headers, response.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert "/sitemap.xml.gz" in bomb_site.hits
    assert peak < 200 * MIB, f"peak {peak / MIB:.0f} MiB while crawling"


def test_pdf_page_limit_is_checked_before_text_extraction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pypdf import PdfWriter

    from lorebase.knowledge.extract import pdf

    writer = PdfWriter()
    for _ in range(3):
        writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    monkeypatch.setattr(pdf, "PDF_MAX_PAGES", 2)
    with pytest.raises(ExtractionError, match="the PDF has 3 pages; the limit is 2"):
        extract("pdf", data=buffer.getvalue())


def test_html_size_after_decoding_is_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    from lorebase.knowledge.extract import limits

    monkeypatch.setattr(limits, "TEXT_MAX_CHARS", 1000)
    page = ("<p>" + "word " * 400 + "</p>").encode()
    with pytest.raises(ExtractionError, match="HTML text is 2,007 characters after decoding"):
        extract("html", data=page)
