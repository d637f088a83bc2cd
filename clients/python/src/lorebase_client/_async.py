"""`AsyncClient`: the asyncio client (the same methods as `Client`, awaited)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, TypeVar

import httpx

from lorebase_client import _calls as calls
from lorebase_client._calls import Call, FileLike, Id
from lorebase_client._session import (
    Credentials,
    EventParser,
    RetryPolicy,
    build_request,
    check,
    transport_error,
)
from lorebase_client.errors import problem_from_event
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
    QueryEvent,
    QueryResponse,
    Source,
    Task,
    TokenPair,
    User,
)

T = TypeVar("T")


class AsyncClient:
    """Every Lorebase route as a typed method. Log in (`login`) or pass an `api_key`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)
        self.credentials = Credentials(api_key=api_key)
        self.retry = retry or RetryPolicy()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the one place requests are sent ------------------------------------------------

    async def _send(self, call: Call[Any]) -> httpx.Response:
        refreshed = False
        for attempt in range(self.retry.attempts + 1):
            try:
                response = await self._http.send(build_request(self._http, call, self.credentials))
            except httpx.TransportError as exc:
                if call.method != "GET" or attempt == self.retry.attempts:
                    raise transport_error(exc) from exc
                await asyncio.sleep(self.retry.wait(attempt, None))
                continue
            if response.status_code == 401 and self.credentials.refreshable and not refreshed:
                refreshed = True
                await self._refresh()
                continue
            if response.status_code in self.retry.statuses and attempt < self.retry.attempts:
                await asyncio.sleep(self.retry.wait(attempt, response))
                continue
            return response
        raise AssertionError("unreachable")

    async def _run(self, call: Call[T]) -> T:
        response = await self._send(call)
        check(response)
        return call.parse(response)

    async def _refresh(self) -> None:
        assert self.credentials.tokens is not None
        tokens = await self._run(calls.refresh(self.credentials.tokens.refresh_token))
        self.credentials.tokens = tokens

    async def _pages(
        self, make: Any, *args: Any, page_size: int = 100, **kwargs: Any
    ) -> AsyncIterator[Any]:
        skip = 0
        while True:
            page = await self._run(make(*args, skip=skip, limit=page_size, **kwargs))
            for item in page.items:
                yield item
            skip += len(page.items)
            if not page.items or skip >= page.total:
                return

    # --- auth ------------------------------------------------------------------------------

    async def health(self) -> Health:
        return await self._run(calls.health())

    async def ready(self) -> Health:
        """Readiness: raises ServiceUnavailable unless the database and Redis both answer."""
        return await self._run(calls.ready())

    async def register(self, username: str, password: str, *, email: str | None = None) -> User:
        return await self._run(calls.register(username, password, email))

    async def login(self, username: str, password: str) -> TokenPair:
        """Sign in; later calls carry the access token, renewed with the refresh token."""
        tokens = await self._run(calls.login(username, password))
        self.credentials = Credentials(tokens=tokens)
        return tokens

    async def me(self) -> User:
        return await self._run(calls.me())

    async def create_api_key(
        self,
        name: str,
        scopes: Sequence[str] = ("read",),
        *,
        project_id: Id | None = None,
        expires_at: str | None = None,
    ) -> ApiKeyCreated:
        return await self._run(calls.create_api_key(name, scopes, project_id, expires_at))

    async def list_api_keys(self, *, skip: int = 0, limit: int = 50) -> Page[ApiKey]:
        return await self._run(calls.list_api_keys(skip, limit))

    async def get_api_key(self, key_id: Id) -> ApiKey:
        return await self._run(calls.get_api_key(key_id))

    async def delete_api_key(self, key_id: Id) -> None:
        await self._run(calls.delete_api_key(key_id))

    # --- projects --------------------------------------------------------------------------

    async def create_project(self, name: str, **fields: Any) -> Project:
        return await self._run(calls.create_project(name, **fields))

    async def list_projects(
        self, *, skip: int = 0, limit: int = 50, **filters: Any
    ) -> Page[Project]:
        return await self._run(calls.list_projects(skip, limit, **filters))

    def iter_projects(self, **filters: Any) -> AsyncIterator[Project]:
        return self._pages(lambda skip, limit: calls.list_projects(skip, limit, **filters))

    async def get_project(self, project_id: Id) -> Project:
        return await self._run(calls.get_project(project_id))

    async def update_project(self, project_id: Id, **fields: Any) -> Project:
        return await self._run(calls.update_project(project_id, **fields))

    async def delete_project(self, project_id: Id, *, cascade: bool = False) -> None:
        await self._run(calls.delete_project(project_id, cascade))

    async def set_member(self, project_id: Id, user_id: Id, role: str) -> Member:
        return await self._run(calls.set_member(project_id, user_id, role))

    async def remove_member(self, project_id: Id, user_id: Id) -> None:
        await self._run(calls.remove_member(project_id, user_id))

    # --- documents -------------------------------------------------------------------------

    async def create_document(self, project_id: Id, name: str, **fields: Any) -> Document:
        return await self._run(calls.create_document(project_id, name, **fields))

    async def list_documents(
        self, project_id: Id, *, skip: int = 0, limit: int = 50
    ) -> Page[Document]:
        return await self._run(calls.list_documents(project_id, skip, limit))

    def iter_documents(self, project_id: Id) -> AsyncIterator[Document]:
        return self._pages(calls.list_documents, project_id)

    async def get_document(self, document_id: Id, *, version: str | None = None) -> Document:
        return await self._run(calls.get_document(document_id, version))

    async def update_document(self, document_id: Id, **fields: Any) -> Document:
        return await self._run(calls.update_document(document_id, **fields))

    async def delete_document(self, document_id: Id) -> None:
        await self._run(calls.delete_document(document_id))

    async def create_version(
        self, document_id: Id, content: str, bump: str = "patch"
    ) -> DocumentVersion:
        return await self._run(calls.create_version(document_id, content, bump))

    async def list_versions(
        self, document_id: Id, *, skip: int = 0, limit: int = 50
    ) -> Page[DocumentVersion]:
        return await self._run(calls.list_versions(document_id, skip, limit))

    # --- tasks -----------------------------------------------------------------------------

    async def create_task(self, project_id: Id, title: str, **fields: Any) -> Task:
        return await self._run(calls.create_task(project_id, title, **fields))

    async def list_tasks(
        self, project_id: Id | None = None, *, skip: int = 0, limit: int = 50, **filters: Any
    ) -> Page[Task]:
        return await self._run(calls.list_tasks(project_id, skip, limit, **filters))

    def iter_tasks(self, project_id: Id, **filters: Any) -> AsyncIterator[Task]:
        return self._pages(lambda skip, limit: calls.list_tasks(project_id, skip, limit, **filters))

    async def get_task(self, task_id: Id) -> Task:
        return await self._run(calls.get_task(task_id))

    async def update_task(self, task_id: Id, **fields: Any) -> Task:
        return await self._run(calls.update_task(task_id, **fields))

    async def delete_task(self, task_id: Id) -> None:
        await self._run(calls.delete_task(task_id))

    # --- knowledge and jobs ----------------------------------------------------------------

    async def upload(
        self,
        project_id: Id,
        files: FileLike | Iterable[FileLike],
        *,
        tags: Sequence[str] | None = None,
    ) -> list[IngestAccepted]:
        """Upload one or more files (paths, or (name, bytes)); one result per file."""
        return await self._run(calls.upload(project_id, files, tags))

    async def ingest_text(
        self, project_id: Id, name: str, text: str, *, tags: Sequence[str] = ()
    ) -> IngestAccepted:
        return await self._run(calls.ingest_text(project_id, name, text, tags))

    async def crawl(self, project_id: Id, url: str, **options: Any) -> JobAccepted:
        return await self._run(calls.crawl(project_id, url, **options))

    async def git(self, project_id: Id, url: str, **options: Any) -> JobAccepted:
        return await self._run(calls.git(project_id, url, **options))

    async def get_job(self, job_id: Id) -> Job:
        return await self._run(calls.get_job(job_id))

    async def cancel_job(self, job_id: Id) -> Job:
        return await self._run(calls.cancel_job(job_id))

    async def retry_job(self, job_id: Id) -> Job:
        """Queue a failed or cancelled job again; returns the new job (the same one if it
        was retried before)."""
        return await self._run(calls.retry_job(job_id))

    async def list_jobs(
        self, project_id: Id | None = None, *, skip: int = 0, limit: int = 50, **filters: Any
    ) -> Page[Job]:
        """Jobs, newest first: one project's, or those of every project you can read;
        filters `status=` and `kind=` (upload, text, crawl, git, source_delete)."""
        return await self._run(calls.list_jobs(project_id, skip, limit, **filters))

    # --- sources ---------------------------------------------------------------------------

    async def list_sources(self, project_id: Id, *, skip: int = 0, limit: int = 50) -> Page[Source]:
        return await self._run(calls.list_sources(project_id, skip, limit))

    async def get_source(self, source_id: Id) -> Source:
        return await self._run(calls.get_source(source_id))

    async def sync_source(self, source_id: Id) -> JobAccepted:
        """Sync now (a job); a `Conflict` (409) while a sync of it is under way."""
        return await self._run(calls.sync_source(source_id))

    async def update_source(self, source_id: Id, **fields: Any) -> Source:
        """E.g. `sync_interval_seconds=3600` (None: on request only), `tags=`, crawl options
        or git globs; only the fields given change."""
        return await self._run(calls.update_source(source_id, **fields))

    async def delete_source(self, source_id: Id) -> JobAccepted:
        """Delete the source with its documents (a job)."""
        return await self._run(calls.delete_source(source_id))

    async def wait_job(
        self,
        job_id: Id,
        *,
        timeout: float = 600.0,  # noqa: ASYNC109 - the same signature as Client.wait_job
        interval: float = 0.5,
    ) -> Job:
        """Poll until the job has finished (succeeded, failed or cancelled)."""
        deadline = time.monotonic() + timeout
        while True:
            job = await self.get_job(job_id)
            if job.finished:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            await asyncio.sleep(interval)

    # --- retrieval -------------------------------------------------------------------------

    async def query(self, project_id: Id, query_text: str, **options: Any) -> QueryResponse:
        """Passages (and with `use_agentic_rag=True` a cited answer) for a question."""
        return await self._run(calls.query(project_id, query_text, **options))

    async def stream(
        self, project_id: Id, query_text: str, **options: Any
    ) -> AsyncIterator[QueryEvent]:
        """The same query as server-sent events; an `error` event raises its problem."""
        call = calls.query(project_id, query_text, **options)
        call.headers["Accept"] = "text/event-stream"
        request = build_request(self._http, call, self.credentials)
        response = await self._http.send(request, stream=True)
        try:
            if response.status_code >= 400:
                await response.aread()
                check(response)
            parser = EventParser()
            async for line in response.aiter_lines():
                for event in parser.feed([line]):
                    if event.event == "error":
                        raise problem_from_event(event.data)
                    yield event
        finally:
            await response.aclose()
