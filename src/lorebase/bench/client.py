"""The public REST API as the harness uses it to seed data (httpx, synchronous)."""

from __future__ import annotations

import time
from typing import Any

import httpx


class ApiError(RuntimeError):
    pass


class ApiClient:
    """A user of a running Lorebase: register, log in, create things, follow jobs."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url + "/api/v1", timeout=120.0)
        self.token = ""
        self._login: tuple[str, str] | None = None
        self._token_at = 0.0

    def close(self) -> None:
        self.http.close()

    def _check(self, response: httpx.Response, *expected: int) -> Any:
        if response.status_code not in expected:
            raise ApiError(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code}: {response.text[:500]}"
            )
        return response.json() if response.content else None

    def paths(self) -> set[str]:
        """Paths the server's OpenAPI document lists (to skip scenarios whose route is absent)."""
        document = self._check(self.http.get(self.base_url + "/api/openapi.json"), 200)
        return set(document.get("paths", {}))

    def register_and_login(self, username: str, password: str) -> None:
        response = self.http.post(
            "/auth/register", json={"username": username, "password": password}
        )
        self._check(response, 201, 409)
        self._login = (username, password)
        self.refresh_token()

    def refresh_token(self) -> None:
        """Log in again (the access token lives `ACCESS_TOKEN_TTL_SECONDS`)."""
        assert self._login is not None
        username, password = self._login
        pair = self._check(
            self.http.post("/auth/token", data={"username": username, "password": password}), 200
        )
        self.token = pair["access_token"]
        self._token_at = time.monotonic()

    def fresh_token(self, *, max_age: float = 300.0) -> str:
        if time.monotonic() - self._token_at > max_age:
            self.refresh_token()
        return self.token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def create_project(self, name: str, **fields: Any) -> dict[str, Any]:
        body = {"name": name, **fields}
        result: dict[str, Any] = self._check(
            self.http.post("/projects", json=body, headers=self.headers), 201
        )
        return result

    def create_task(self, project_id: str, title: str, **fields: Any) -> dict[str, Any]:
        body = {"project_id": project_id, "title": title, **fields}
        result: dict[str, Any] = self._check(
            self.http.post("/tasks", json=body, headers=self.headers), 201
        )
        return result

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self.http.get(path, params=params, headers=self.headers), 200)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self.http.post(path, json=body, headers=self.headers), 200)

    def upload(self, project_id: str, name: str, text: str) -> list[dict[str, Any]]:
        """Upload one text file; the accepted documents and their jobs."""
        response = self.http.post(
            "/knowledge/upload",
            data={"project_id": project_id},
            files={"file": (name, text.encode(), "text/plain")},
            headers=self.headers,
        )
        result = self._check(response, 200, 202)
        return result if isinstance(result, list) else [result]

    def wait_for_jobs(
        self, job_ids: list[str], *, timeout: float, stall: float
    ) -> list[dict[str, Any]]:
        """Poll `/jobs/{id}` (the oldest unfinished job first) until every job has finished;
        fails when nothing progressed for `stall` seconds or after `timeout`."""
        final: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        last_change = time.monotonic()
        last_seen: tuple[str, Any] | None = None
        for job_id in job_ids:
            while True:
                job = self.get(f"/jobs/{job_id}")
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    final.append(job)
                    last_change = time.monotonic()
                    break
                seen = (job["status"], job.get("progress"))
                if seen != last_seen:
                    last_seen, last_change = seen, time.monotonic()
                now = time.monotonic()
                if now > deadline or now - last_change > stall:
                    raise ApiError(
                        f"ingestion stalled: job {job_id} is {job['status']} "
                        f"(progress {job.get('progress')}) after {now - last_change:.0f}s "
                        f"without change; {len(job_ids) - len(final)} job(s) unfinished"
                    )
                time.sleep(0.2)
        return final
