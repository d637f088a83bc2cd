"""`Client`: the synchronous client."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
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


class Client:
    """Every Lorebase route as a typed method. Log in (`login`) or pass an `api_key`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self.credentials = Credentials(api_key=api_key)
        self.retry = retry or RetryPolicy()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- the one place requests are sent ------------------------------------------------

    def _send(self, call: Call[Any]) -> httpx.Response:
        refreshed = False
        for attempt in range(self.retry.attempts + 1):
            try:
                response = self._http.send(build_request(self._http, call, self.credentials))
            except httpx.TransportError as exc:
                if call.method != "GET" or attempt == self.retry.attempts:
                    raise transport_error(exc) from exc
                time.sleep(self.retry.wait(attempt, None))
                continue
            if response.status_code == 401 and self.credentials.refreshable and not refreshed:
                refreshed = True
                self._refresh()
                continue
            if response.status_code in self.retry.statuses and attempt < self.retry.attempts:
                time.sleep(self.retry.wait(attempt, response))
                continue
            return response
        raise AssertionError("unreachable")

    def _run(self, call: Call[T]) -> T:
        response = self._send(call)
        check(response)
        return call.parse(response)

    def _refresh(self) -> None:
        assert self.credentials.tokens is not None
        tokens = self._run(calls.refresh(self.credentials.tokens.refresh_token))
        self.credentials.tokens = tokens

    def _pages(self, make: Any, *args: Any, page_size: int = 100, **kwargs: Any) -> Iterator[Any]:
        skip = 0
        while True:
            page = self._run(make(*args, skip=skip, limit=page_size, **kwargs))
            yield from page.items
            skip += len(page.items)
            if not page.items or skip >= page.total:
                return

    # --- auth ------------------------------------------------------------------------------

    def health(self) -> Health:
        return self._run(calls.health())

    def ready(self) -> Health:
        """Readiness: raises ServiceUnavailable unless the database and Redis both answer."""
        return self._run(calls.ready())

    def register(self, username: str, password: str, *, email: str | None = None) -> User:
        return self._run(calls.register(username, password, email))

    def login(self, username: str, password: str) -> TokenPair:
        """Sign in; later calls carry the access token, renewed with the refresh token."""
        tokens = self._run(calls.login(username, password))
        self.credentials = Credentials(tokens=tokens)
        return tokens

    def me(self) -> User:
        return self._run(calls.me())

    def create_api_key(
        self,
        name: str,
        scopes: Sequence[str] = ("read",),
        *,
        project_id: Id | None = None,
        expires_at: str | None = None,
    ) -> ApiKeyCreated:
        return self._run(calls.create_api_key(name, scopes, project_id, expires_at))

    def list_api_keys(self, *, skip: int = 0, limit: int = 50) -> Page[ApiKey]:
        return self._run(calls.list_api_keys(skip, limit))

    def get_api_key(self, key_id: Id) -> ApiKey:
        return self._run(calls.get_api_key(key_id))

    def delete_api_key(self, key_id: Id) -> None:
        self._run(calls.delete_api_key(key_id))

    # --- projects --------------------------------------------------------------------------

    def create_project(self, name: str, **fields: Any) -> Project:
        return self._run(calls.create_project(name, **fields))

    def list_projects(self, *, skip: int = 0, limit: int = 50, **filters: Any) -> Page[Project]:
        return self._run(calls.list_projects(skip, limit, **filters))

    def iter_projects(self, **filters: Any) -> Iterator[Project]:
        return self._pages(lambda skip, limit: calls.list_projects(skip, limit, **filters))

    def get_project(self, project_id: Id) -> Project:
        return self._run(calls.get_project(project_id))

    def update_project(self, project_id: Id, **fields: Any) -> Project:
        return self._run(calls.update_project(project_id, **fields))

    def delete_project(self, project_id: Id, *, cascade: bool = False) -> None:
        self._run(calls.delete_project(project_id, cascade))

    def set_member(self, project_id: Id, user_id: Id, role: str) -> Member:
        return self._run(calls.set_member(project_id, user_id, role))

    def remove_member(self, project_id: Id, user_id: Id) -> None:
        self._run(calls.remove_member(project_id, user_id))

    # --- documents -------------------------------------------------------------------------

    def create_document(self, project_id: Id, name: str, **fields: Any) -> Document:
        return self._run(calls.create_document(project_id, name, **fields))

    def list_documents(self, project_id: Id, *, skip: int = 0, limit: int = 50) -> Page[Document]:
        return self._run(calls.list_documents(project_id, skip, limit))

    def iter_documents(self, project_id: Id) -> Iterator[Document]:
        return self._pages(calls.list_documents, project_id)

    def get_document(self, document_id: Id, *, version: str | None = None) -> Document:
        return self._run(calls.get_document(document_id, version))

    def update_document(self, document_id: Id, **fields: Any) -> Document:
        return self._run(calls.update_document(document_id, **fields))

    def delete_document(self, document_id: Id) -> None:
        self._run(calls.delete_document(document_id))

    def create_version(self, document_id: Id, content: str, bump: str = "patch") -> DocumentVersion:
        return self._run(calls.create_version(document_id, content, bump))

    def list_versions(
        self, document_id: Id, *, skip: int = 0, limit: int = 50
    ) -> Page[DocumentVersion]:
        return self._run(calls.list_versions(document_id, skip, limit))

    # --- tasks -----------------------------------------------------------------------------

    def create_task(self, project_id: Id, title: str, **fields: Any) -> Task:
        return self._run(calls.create_task(project_id, title, **fields))

    def list_tasks(
        self, project_id: Id | None = None, *, skip: int = 0, limit: int = 50, **filters: Any
    ) -> Page[Task]:
        return self._run(calls.list_tasks(project_id, skip, limit, **filters))

    def iter_tasks(self, project_id: Id, **filters: Any) -> Iterator[Task]:
        return self._pages(lambda skip, limit: calls.list_tasks(project_id, skip, limit, **filters))

    def get_task(self, task_id: Id) -> Task:
        return self._run(calls.get_task(task_id))

    def update_task(self, task_id: Id, **fields: Any) -> Task:
        return self._run(calls.update_task(task_id, **fields))

    def delete_task(self, task_id: Id) -> None:
        self._run(calls.delete_task(task_id))

    # --- knowledge and jobs ----------------------------------------------------------------

    def upload(
        self,
        project_id: Id,
        files: FileLike | Iterable[FileLike],
        *,
        tags: Sequence[str] | None = None,
    ) -> list[IngestAccepted]:
        """Upload one or more files (paths, or (name, bytes)); one result per file."""
        return self._run(calls.upload(project_id, files, tags))

    def ingest_text(
        self, project_id: Id, name: str, text: str, *, tags: Sequence[str] = ()
    ) -> IngestAccepted:
        return self._run(calls.ingest_text(project_id, name, text, tags))

    def crawl(self, project_id: Id, url: str, **options: Any) -> JobAccepted:
        return self._run(calls.crawl(project_id, url, **options))

    def git(self, project_id: Id, url: str, **options: Any) -> JobAccepted:
        return self._run(calls.git(project_id, url, **options))

    def get_job(self, job_id: Id) -> Job:
        return self._run(calls.get_job(job_id))

    def cancel_job(self, job_id: Id) -> Job:
        return self._run(calls.cancel_job(job_id))

    def retry_job(self, job_id: Id) -> Job:
        """Queue a failed or cancelled job again; returns the new job (the same one if it
        was retried before)."""
        return self._run(calls.retry_job(job_id))

    def list_jobs(
        self, project_id: Id | None = None, *, skip: int = 0, limit: int = 50, **filters: Any
    ) -> Page[Job]:
        """Jobs, newest first: one project's, or those of every project you can read;
        filters `status=` and `kind=` (upload, text, crawl, git, source_delete)."""
        return self._run(calls.list_jobs(project_id, skip, limit, **filters))

    # --- sources ---------------------------------------------------------------------------

    def list_sources(self, project_id: Id, *, skip: int = 0, limit: int = 50) -> Page[Source]:
        return self._run(calls.list_sources(project_id, skip, limit))

    def get_source(self, source_id: Id) -> Source:
        return self._run(calls.get_source(source_id))

    def sync_source(self, source_id: Id) -> JobAccepted:
        """Sync now (a job); a `Conflict` (409) while a sync of it is under way."""
        return self._run(calls.sync_source(source_id))

    def update_source(self, source_id: Id, **fields: Any) -> Source:
        """E.g. `sync_interval_seconds=3600` (None: on request only), `tags=`, crawl options
        or git globs; only the fields given change."""
        return self._run(calls.update_source(source_id, **fields))

    def delete_source(self, source_id: Id) -> JobAccepted:
        """Delete the source with its documents (a job)."""
        return self._run(calls.delete_source(source_id))

    def wait_job(self, job_id: Id, *, timeout: float = 600.0, interval: float = 0.5) -> Job:
        """Poll until the job has finished (succeeded, failed or cancelled)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id)
            if job.finished:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout} s")
            time.sleep(interval)

    # --- retrieval -------------------------------------------------------------------------

    def query(self, project_id: Id, query_text: str, **options: Any) -> QueryResponse:
        """Passages (and with `use_agentic_rag=True` a cited answer) for a question."""
        return self._run(calls.query(project_id, query_text, **options))

    def stream(self, project_id: Id, query_text: str, **options: Any) -> Iterator[QueryEvent]:
        """The same query as server-sent events; an `error` event raises its problem."""
        call = calls.query(project_id, query_text, **options)
        call.headers["Accept"] = "text/event-stream"
        request = build_request(self._http, call, self.credentials)
        response = self._http.send(request, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                check(response)
            parser = EventParser()
            for line in response.iter_lines():
                for event in parser.feed([line]):
                    if event.event == "error":
                        raise problem_from_event(event.data)
                    yield event
        finally:
            response.close()
