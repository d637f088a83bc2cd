"""The one check every job route makes: the job exists and the caller has `permission` on its
project; anything else is the same 404, so a stranger cannot probe job ids."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lorebase.auth.permissions import Permission
from lorebase.auth.principal import Principal
from lorebase.db import Conn
from lorebase.errors import NotFound
from lorebase.knowledge import repository
from lorebase.projects.service import row_in_project


async def job_for(
    conn: Conn, *, principal: Principal, job_id: UUID, permission: Permission, lock: bool = False
) -> dict[str, Any]:
    """The job's row (locked FOR UPDATE when `lock`), or NotFound."""
    fetch = repository.lock_job if lock else repository.get_job
    row = await fetch(conn, job_id=job_id)
    return await row_in_project(
        conn, row, principal=principal, permission=permission, missing=NotFound("job not found")
    )
