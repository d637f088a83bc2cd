"""Every route as a `Call`: what to send and how to read the answer. `Client` and `AsyncClient`
only execute calls, so the two cannot disagree about a route."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx
from pydantic import TypeAdapter

from lorebase_client.models import (
    ApiKey,
    ApiKeyCreated,
    Document,
    DocumentVersion,
    Health,
    IngestAccepted,
    Job,
    JobAccepted,
    Member,
    Page,
    Project,
    QueryResponse,
    Source,
    Task,
    TokenPair,
    User,
)

T = TypeVar("T")
Id = UUID | str
# A file to upload: a path, or (name, bytes), or (name, bytes, content type).
FileLike = str | Path | tuple[str, bytes] | tuple[str, bytes, str]


@dataclass
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    data: dict[str, Any] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    anonymous: bool = False  # sent without credentials (login, register, refresh)
    headers: dict[str, str] = field(default_factory=dict)


def _model(model: Any) -> Callable[[httpx.Response], Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(model)
    return lambda response: adapter.validate_python(response.json())


def _none(_response: httpx.Response) -> None:
    return None


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    """Drop unset optional fields, so the server's defaults apply."""
    return {k: (str(v) if isinstance(v, UUID) else v) for k, v in values.items() if v is not None}


def _page(model: type[T], path: str, **params: Any) -> Call[Page[T]]:
    return Call("GET", path, _model(Page[model]), params=_clean(params))  # type: ignore[valid-type]


# --- auth ----------------------------------------------------------------------------------


def health() -> Call[Health]:
    return Call("GET", "/health", _model(Health), anonymous=True)


def ready() -> Call[Health]:
    return Call("GET", "/health/ready", _model(Health), anonymous=True)


def register(username: str, password: str, email: str | None) -> Call[User]:
    body = _clean({"username": username, "password": password, "email": email})
    return Call("POST", "/auth/register", _model(User), json=body, anonymous=True)


def login(username: str, password: str) -> Call[TokenPair]:
    form = {"username": username, "password": password}
    return Call("POST", "/auth/token", _model(TokenPair), data=form, anonymous=True)


def refresh(refresh_token: str) -> Call[TokenPair]:
    body = {"refresh_token": refresh_token}
    return Call("POST", "/auth/refresh", _model(TokenPair), json=body, anonymous=True)


def me() -> Call[User]:
    return Call("GET", "/auth/me", _model(User))


def create_api_key(
    name: str, scopes: Sequence[str], project_id: Id | None, expires_at: str | None
) -> Call[ApiKeyCreated]:
    body = _clean(
        {"name": name, "scopes": list(scopes), "project_id": project_id, "expires_at": expires_at}
    )
    return Call("POST", "/api-keys", _model(ApiKeyCreated), json=body)


def list_api_keys(skip: int, limit: int) -> Call[Page[ApiKey]]:
    return _page(ApiKey, "/api-keys", skip=skip, limit=limit)


def get_api_key(key_id: Id) -> Call[ApiKey]:
    return Call("GET", f"/api-keys/{key_id}", _model(ApiKey))


def delete_api_key(key_id: Id) -> Call[None]:
    return Call("DELETE", f"/api-keys/{key_id}", _none)


# --- projects ------------------------------------------------------------------------------


def create_project(name: str, **fields: Any) -> Call[Project]:
    return Call("POST", "/projects", _model(Project), json=_clean({"name": name, **fields}))


def list_projects(skip: int, limit: int, **filters: Any) -> Call[Page[Project]]:
    return _page(Project, "/projects", skip=skip, limit=limit, **filters)


def get_project(project_id: Id) -> Call[Project]:
    return Call("GET", f"/projects/{project_id}", _model(Project))


def update_project(project_id: Id, **fields: Any) -> Call[Project]:
    return Call("PUT", f"/projects/{project_id}", _model(Project), json=_clean(fields))


def delete_project(project_id: Id, cascade: bool) -> Call[None]:
    params = {"cascade": "true"} if cascade else None
    return Call("DELETE", f"/projects/{project_id}", _none, params=params)


def set_member(project_id: Id, user_id: Id, role: str) -> Call[Member]:
    path = f"/projects/{project_id}/members/{user_id}"
    return Call("PUT", path, _model(Member), json={"role": role})


def remove_member(project_id: Id, user_id: Id) -> Call[None]:
    return Call("DELETE", f"/projects/{project_id}/members/{user_id}", _none)


# --- documents -----------------------------------------------------------------------------


def create_document(project_id: Id, name: str, **fields: Any) -> Call[Document]:
    body = _clean({"project_id": project_id, "name": name, **fields})
    return Call("POST", "/documents", _model(Document), json=body)


def list_documents(project_id: Id, skip: int, limit: int) -> Call[Page[Document]]:
    return _page(Document, "/documents", project_id=project_id, skip=skip, limit=limit)


def get_document(document_id: Id, version: str | None) -> Call[Document]:
    params = _clean({"version": version})
    return Call("GET", f"/documents/{document_id}", _model(Document), params=params)


def update_document(document_id: Id, **fields: Any) -> Call[Document]:
    return Call("PUT", f"/documents/{document_id}", _model(Document), json=_clean(fields))


def delete_document(document_id: Id) -> Call[None]:
    return Call("DELETE", f"/documents/{document_id}", _none)


def create_version(document_id: Id, content: str, bump: str) -> Call[DocumentVersion]:
    body = {"content": content, "bump": bump}
    return Call("POST", f"/documents/{document_id}/version", _model(DocumentVersion), json=body)


def list_versions(document_id: Id, skip: int, limit: int) -> Call[Page[DocumentVersion]]:
    return _page(DocumentVersion, f"/documents/{document_id}/versions", skip=skip, limit=limit)


# --- tasks ---------------------------------------------------------------------------------


def create_task(project_id: Id, title: str, **fields: Any) -> Call[Task]:
    fields["dependencies"] = [str(d) for d in fields.get("dependencies") or []]
    body = _clean({"project_id": project_id, "title": title, **fields})
    return Call("POST", "/tasks", _model(Task), json=body)


def list_tasks(project_id: Id | None, skip: int, limit: int, **filters: Any) -> Call[Page[Task]]:
    return _page(Task, "/tasks", project_id=project_id, skip=skip, limit=limit, **filters)


def get_task(task_id: Id) -> Call[Task]:
    return Call("GET", f"/tasks/{task_id}", _model(Task))


def update_task(task_id: Id, **fields: Any) -> Call[Task]:
    if fields.get("dependencies") is not None:
        fields["dependencies"] = [str(d) for d in fields["dependencies"]]
    return Call("PUT", f"/tasks/{task_id}", _model(Task), json=_clean(fields))


def delete_task(task_id: Id) -> Call[None]:
    return Call("DELETE", f"/tasks/{task_id}", _none)


# --- knowledge and jobs --------------------------------------------------------------------


def _file(item: FileLike) -> tuple[str, bytes, str]:
    if isinstance(item, str | Path):
        path = Path(item)
        return (path.name, path.read_bytes(), "application/octet-stream")
    if len(item) == 2:
        return (item[0], item[1], "application/octet-stream")
    return item


def upload(
    project_id: Id, files: FileLike | Iterable[FileLike], tags: Sequence[str] | None
) -> Call[list[IngestAccepted]]:
    many = [files] if isinstance(files, str | Path | tuple) else list(files)
    adapter: TypeAdapter[Any] = TypeAdapter(IngestAccepted | list[IngestAccepted])

    def parse(response: httpx.Response) -> list[IngestAccepted]:
        value = adapter.validate_python(response.json())
        return value if isinstance(value, list) else [value]

    data: dict[str, Any] = {"project_id": str(project_id)}
    if tags:
        data["tags"] = list(tags)
    parts = [("file", _file(item)) for item in many]
    return Call("POST", "/knowledge/upload", parse, data=data, files=parts)


def ingest_text(project_id: Id, name: str, text: str, tags: Sequence[str]) -> Call[IngestAccepted]:
    body = {"project_id": str(project_id), "name": name, "text": text, "tags": list(tags)}
    return Call("POST", "/knowledge/text", _model(IngestAccepted), json=body)


def crawl(project_id: Id, url: str, **options: Any) -> Call[JobAccepted]:
    body = _clean({"project_id": project_id, "url": url, **options})
    return Call("POST", "/knowledge/crawl", _model(JobAccepted), json=body)


def git(project_id: Id, url: str, **options: Any) -> Call[JobAccepted]:
    body = _clean({"project_id": project_id, "url": url, **options})
    return Call("POST", "/knowledge/git", _model(JobAccepted), json=body)


def get_job(job_id: Id) -> Call[Job]:
    return Call("GET", f"/jobs/{job_id}", _model(Job))


def cancel_job(job_id: Id) -> Call[Job]:
    return Call("POST", f"/jobs/{job_id}/cancel", _model(Job))


def retry_job(job_id: Id) -> Call[Job]:
    return Call("POST", f"/jobs/{job_id}/retry", _model(Job))


def list_jobs(project_id: Id | None, skip: int, limit: int, **filters: Any) -> Call[Page[Job]]:
    return _page(Job, "/jobs", project_id=project_id, skip=skip, limit=limit, **filters)


# --- sources -------------------------------------------------------------------------------


def list_sources(project_id: Id, skip: int, limit: int) -> Call[Page[Source]]:
    return _page(Source, f"/projects/{project_id}/sources", skip=skip, limit=limit)


def get_source(source_id: Id) -> Call[Source]:
    return Call("GET", f"/sources/{source_id}", _model(Source))


def sync_source(source_id: Id) -> Call[JobAccepted]:
    return Call("POST", f"/sources/{source_id}/sync", _model(JobAccepted))


def update_source(source_id: Id, **fields: Any) -> Call[Source]:
    # Sent as given: `sync_interval_seconds=None` stops the schedule.
    return Call("PUT", f"/sources/{source_id}", _model(Source), json=fields)


def delete_source(source_id: Id) -> Call[JobAccepted]:
    return Call("DELETE", f"/sources/{source_id}", _model(JobAccepted))


# --- retrieval -----------------------------------------------------------------------------


def query_body(project_id: Id, query_text: str, **options: Any) -> dict[str, Any]:
    return _clean({"project_id": project_id, "query_text": query_text, **options})


def query(project_id: Id, query_text: str, **options: Any) -> Call[QueryResponse]:
    body = query_body(project_id, query_text, **options)
    return Call("POST", "/rag/query", _model(QueryResponse), json=body)
