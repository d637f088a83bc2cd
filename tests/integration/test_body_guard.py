"""The body guard (api/guard.py): huge bodies refused before they are read, by strangers or not.

Bodies here are generated lazily (an async generator yielding one reused 1 MiB chunk), so a
1 GB request never exists in the test's memory; the generator counts how much was pulled."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from lorebase.context import AppContext
from lorebase.main import create_app
from tests.factories import create_project, register_user

MIB = 1024 * 1024
GIB = 1024 * MIB
CHUNK = b"x" * MIB
# RSS may move by allocator noise; reading a 1 GB body would move it by ~1 GB (the finding
# was +2 GB), so a generous bound still tells the two apart.
RSS_BOUND = 64 * MIB


class LazyBody:
    """`size` bytes of `prefix` + filler + `suffix`, produced a chunk at a time."""

    def __init__(self, size: int, *, prefix: bytes = b"", suffix: bytes = b"") -> None:
        self.size = size
        self.prefix = prefix
        self.suffix = suffix
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.prefix:
            self.pulled += len(self.prefix)
            yield self.prefix
        left = self.size
        while left > 0:
            chunk = CHUNK if left >= MIB else CHUNK[:left]
            left -= len(chunk)
            self.pulled += len(chunk)
            yield chunk
        if self.suffix:
            yield self.suffix


def _multipart(size: int, project_id: str = "00000000-0000-0000-0000-000000000000") -> LazyBody:
    prefix = (
        b'--B\r\nContent-Disposition: form-data; name="project_id"\r\n\r\n'
        + project_id.encode()
        + b'\r\n--B\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
    )
    return LazyBody(size, prefix=prefix, suffix=b"\r\n--B--\r\n")


def _rss() -> int:
    return int(psutil.Process(os.getpid()).memory_info().rss)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The process's temp dir for this test, so files others make in /tmp do not count."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def _temp_entries(*dirs: Path) -> set[str]:
    found: set[str] = set()
    for directory in dirs:
        if directory.exists():
            found |= {str(p) for p in directory.iterdir()}
    return found


def _client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60)


@pytest.mark.parametrize(
    ("path", "content_type", "make_body"),
    [
        ("/api/v1/projects", "application/json", lambda: LazyBody(GIB, prefix=b'{"name": "')),
        ("/api/v1/knowledge/upload", "multipart/form-data; boundary=B", lambda: _multipart(GIB)),
    ],
    ids=["json", "multipart"],
)
async def test_anonymous_gigabyte_body_is_refused_unread(
    ctx: AppContext,
    client: httpx.AsyncClient,
    private_tmp: Path,
    path: str,
    content_type: str,
    make_body: Any,
) -> None:
    uploads = ctx.settings.lorebase_data_dir / "uploads"
    before_files = _temp_entries(private_tmp, uploads)
    body = make_body()
    before = _rss()
    response = await client.post(path, content=body, headers={"Content-Type": content_type})
    grew = _rss() - before
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert body.pulled <= 2 * MIB, f"the guard read {body.pulled} bytes of an anonymous body"
    assert grew < RSS_BOUND, f"RSS grew by {grew / MIB:.0f} MiB"
    assert _temp_entries(private_tmp, uploads) <= before_files


async def test_declared_length_over_the_cap_is_413_at_once(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    body = LazyBody(GIB)
    response = await client.post(
        "/api/v1/projects",
        content=body,
        headers={**user.headers, "Content-Type": "application/json", "Content-Length": str(GIB)},
    )
    assert response.status_code == 413, response.text
    assert "MAX_JSON_BYTES" in response.json()["detail"]
    assert body.pulled <= MIB


async def test_streamed_json_body_is_cut_at_the_cap(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    user = await register_user(client)
    body = LazyBody(64 * MIB, prefix=b'{"name": "')
    before = _rss()
    response = await client.post(
        "/api/v1/projects",
        content=body,
        headers={**user.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["type"].endswith("/payload-too-large")
    cap = ctx.settings.max_json_bytes
    assert body.pulled <= cap + 2 * MIB
    assert _rss() - before < RSS_BOUND


async def test_invalid_token_is_401_before_the_body(client: httpx.AsyncClient) -> None:
    body = LazyBody(GIB, prefix=b'{"name": "')
    response = await client.post(
        "/api/v1/projects",
        content=body,
        headers={"Authorization": "Bearer not-a-token", "Content-Type": "application/json"},
    )
    assert response.status_code == 401
    assert body.pulled == 0


async def test_streamed_upload_stops_each_file_at_max_upload_bytes(
    ctx: AppContext, private_tmp: Path
) -> None:
    settings = ctx.settings.model_copy(
        update={"max_upload_bytes": MIB, "max_upload_request_bytes": 8 * MIB}
    )
    app = create_app(context=dataclasses.replace(ctx, settings=settings))
    uploads = settings.lorebase_data_dir / "uploads"
    async with app.router.lifespan_context(app), _client(app) as client:
        user = await register_user(client)
        project = await create_project(client, user.headers)
        before_files = _temp_entries(private_tmp, uploads)
        one_file = _multipart(6 * MIB, project["id"])
        response = await client.post(
            "/api/v1/knowledge/upload",
            content=one_file,
            headers={**user.headers, "Content-Type": "multipart/form-data; boundary=B"},
        )
        assert response.status_code == 413, response.text
        assert "big.txt" in response.json()["detail"]
        assert "MAX_UPLOAD_BYTES" in response.json()["detail"]
        assert one_file.pulled <= 3 * MIB, "the file was read past its cap"
        whole = _multipart(GIB, project["id"])
        response = await client.post(
            "/api/v1/knowledge/upload",
            content=whole,
            headers={**user.headers, "Content-Type": "multipart/form-data; boundary=B"},
        )
        assert response.status_code == 413
        assert whole.pulled <= 10 * MIB
        assert _temp_entries(private_tmp, uploads) <= before_files
        listed = await client.get(
            "/api/v1/documents", params={"project_id": project["id"]}, headers=user.headers
        )
        assert listed.json()["total"] == 0


async def test_upload_filenames_are_reduced_to_a_safe_base_name(
    client: httpx.AsyncClient,
) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    long_name = "n" * 400 + ".md"
    for raw, expected in [("../../etc/notes.md", "notes.md"), (long_name, None)]:
        response = await client.post(
            "/api/v1/knowledge/upload",
            headers=user.headers,
            data={"project_id": project["id"]},
            files={"file": (raw, b"# Notes\n\nSome text " + raw.encode())},
        )
        assert response.status_code == 202, response.text
        name = response.json()["name"]
        assert "/" not in name
        assert ".." not in name
        assert len(name) <= 255
        assert name.endswith(".md")
        if expected:
            assert name == expected


async def test_upload_tags_follow_the_64_character_rule(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    response = await client.post(
        "/api/v1/knowledge/upload",
        headers=user.headers,
        data={"project_id": project["id"], "tags": "t" * 65},
        files={"file": ("tagged.md", b"# Tagged\n\ntext")},
    )
    assert response.status_code == 422, response.text
    assert "1-64" in response.json()["detail"]
