"""Multipart uploads streamed into the data dir, each file held to `MAX_UPLOAD_BYTES` as it
arrives (Starlette's own parser spools to the system temp dir and never counts a file).

The whole request is bounded before this by `api.guard` (`max_upload_request_bytes`)."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath
from tempfile import SpooledTemporaryFile
from typing import BinaryIO, cast

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from lorebase.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

MAX_FILENAME_CHARS = 255
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def safe_filename(raw: str | None, *, default: str = "upload") -> str:
    """`raw` reduced to a base name: no directories (`../`, `C:\\`), no control or reserved
    characters, no leading dots, at most MAX_FILENAME_CHARS characters (the extension kept)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = PureWindowsPath(PurePosixPath(name.replace("\\", "/")).name).name
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if not name:
        return default
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


class _CappedParser(MultiPartParser):
    """Spools file parts under `directory` and stops a file at `max_file_bytes`."""

    spool_max_size = 256 * 1024  # larger files go to disk in the data dir

    def __init__(self, request: Request, *, directory: Path, max_file_bytes: int, max_files: int):
        super().__init__(request.headers, request.stream(), max_files=max_files, max_fields=100)
        self.directory = directory
        self.max_file_bytes = max_file_bytes
        self._file_bytes = 0

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        part = self._current_part
        if part.file is None:
            return
        self._file_bytes = 0
        # Replace the parent's spool (system temp dir, not yet written) by one in the data dir.
        default = self._files_to_close_on_error.pop()
        default.close()
        # Closed by close_form() after the route, or by the parser on error.
        spool: SpooledTemporaryFile[bytes] = SpooledTemporaryFile(  # noqa: SIM115
            max_size=self.spool_max_size, dir=str(self.directory)
        )
        self._files_to_close_on_error.append(spool)
        part.file.file = cast(BinaryIO, spool)
        part.file.filename = safe_filename(part.file.filename)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._current_part
        if part.file is not None:
            self._file_bytes += end - start
            if self._file_bytes > self.max_file_bytes:
                raise PayloadTooLarge(
                    f"{part.file.filename} is larger than the limit of {self.max_file_bytes} "
                    "bytes per file (MAX_UPLOAD_BYTES)",
                    errors=[{"field": "file", "name": part.file.filename, "msg": "too large"}],
                )
        super().on_part_data(data, start, end)


async def parse_upload_form(
    request: Request, *, directory: Path, max_file_bytes: int, max_files: int
) -> FormData:
    """The request's multipart form; file parts are spooled under `directory`."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the files as multipart/form-data")
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - one stat, no wait
    parser = _CappedParser(
        request, directory=directory, max_file_bytes=max_file_bytes, max_files=max_files
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(f"malformed multipart body: {exc.message}") from None


async def close_form(form: FormData) -> None:
    """Delete the spooled files now rather than at garbage collection."""
    for _, value in form.multi_items():
        if isinstance(value, UploadFile):
            await value.close()
