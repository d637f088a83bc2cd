"""Local ingestion for `lorebase ingest`: submit files through the upload service and follow
their jobs until they finish."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from lorebase.auth.principal import Principal
from lorebase.context import AppContext
from lorebase.errors import AppError
from lorebase.knowledge import repository
from lorebase.knowledge.schemas import JobRead
from lorebase.knowledge.service import upload_files
from lorebase.knowledge.sources.upload import UploadedFile

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(slots=True)
class FileOutcome:
    path: Path
    name: str
    status: str  # queued | duplicate | skipped, then the job's final status
    detail: str | None = None
    job_id: UUID | None = None
    document_id: UUID | None = None


async def submit_files(
    ctx: AppContext,
    *,
    principal: Principal,
    project_id: UUID,
    files: list[tuple[Path, str]],
    tags: list[str],
    on_submitted: Callable[[FileOutcome], None] | None = None,
) -> list[FileOutcome]:
    """Upload each file (one transaction each); unsupported or oversized files are skipped."""
    outcomes: list[FileOutcome] = []
    for path, name in files:
        outcome = FileOutcome(path=path, name=name, status="skipped")
        try:
            if path.stat().st_size > ctx.settings.max_upload_bytes:
                raise _Skip(f"larger than {ctx.settings.max_upload_bytes} bytes")
            data = await asyncio.to_thread(path.read_bytes)
            (result,) = await upload_files(
                ctx=ctx,
                principal=principal,
                project_id=project_id,
                files=[UploadedFile(name=name, data=data)],
                tags=tags,
            )
        except _Skip as skip:
            outcome.detail = str(skip)
        except OSError as exc:
            outcome.detail = exc.strerror or str(exc)
        except AppError as exc:
            if exc.status not in (413, 415, 422):
                raise
            outcome.detail = exc.detail
        else:
            outcome.document_id = result.document_id
            outcome.job_id = result.job_id
            outcome.status = "queued" if result.job_id else "duplicate"
        outcomes.append(outcome)
        if on_submitted is not None:
            on_submitted(outcome)
    return outcomes


async def wait_for_jobs(
    ctx: AppContext,
    job_ids: list[UUID],
    *,
    on_update: Callable[[int, int], None] | None = None,
    poll_seconds: float = 0.5,
) -> dict[UUID, JobRead]:
    """Poll until every job has finished; `on_update(finished, total)` after each poll."""
    pending = set(job_ids)
    results: dict[UUID, JobRead] = {}
    while pending:
        async with ctx.db.connection() as conn:
            for job_id in list(pending):
                row = await repository.get_job(conn, job_id=job_id)
                if row is None:  # deleted with its project
                    pending.discard(job_id)
                elif row["status"] in FINISHED:
                    results[job_id] = JobRead.from_row(row)
                    pending.discard(job_id)
        if on_update is not None:
            on_update(len(job_ids) - len(pending), len(job_ids))
        if pending:
            await asyncio.sleep(poll_seconds)
    return results


class _Skip(Exception):
    pass
