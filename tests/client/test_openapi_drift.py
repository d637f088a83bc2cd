"""The client cannot drift from the server: its models against the server's OpenAPI schemas,
and every `/api/v1` operation has a method on both `Client` and `AsyncClient`."""

from __future__ import annotations

from typing import Any

import pytest
from lorebase_client import AsyncClient, Client
from lorebase_client.models import SCHEMA_MODELS, Model

from lorebase.main import create_app

# Every operation of the REST API and the client method that calls it.
OPERATIONS = {
    ("GET", "/api/v1/health"): "health",
    ("GET", "/api/v1/health/ready"): "ready",
    ("POST", "/api/v1/auth/register"): "register",
    ("POST", "/api/v1/auth/token"): "login",
    ("POST", "/api/v1/auth/refresh"): "_refresh",
    ("GET", "/api/v1/auth/me"): "me",
    ("POST", "/api/v1/api-keys"): "create_api_key",
    ("GET", "/api/v1/api-keys"): "list_api_keys",
    ("GET", "/api/v1/api-keys/{key_id}"): "get_api_key",
    ("DELETE", "/api/v1/api-keys/{key_id}"): "delete_api_key",
    ("POST", "/api/v1/projects"): "create_project",
    ("GET", "/api/v1/projects"): "list_projects",
    ("GET", "/api/v1/projects/{project_id}"): "get_project",
    ("PUT", "/api/v1/projects/{project_id}"): "update_project",
    ("DELETE", "/api/v1/projects/{project_id}"): "delete_project",
    ("PUT", "/api/v1/projects/{project_id}/members/{user_id}"): "set_member",
    ("DELETE", "/api/v1/projects/{project_id}/members/{user_id}"): "remove_member",
    ("POST", "/api/v1/tasks"): "create_task",
    ("GET", "/api/v1/tasks"): "list_tasks",
    ("GET", "/api/v1/tasks/{task_id}"): "get_task",
    ("PUT", "/api/v1/tasks/{task_id}"): "update_task",
    ("DELETE", "/api/v1/tasks/{task_id}"): "delete_task",
    ("POST", "/api/v1/documents"): "create_document",
    ("GET", "/api/v1/documents"): "list_documents",
    ("GET", "/api/v1/documents/{document_id}"): "get_document",
    ("PUT", "/api/v1/documents/{document_id}"): "update_document",
    ("DELETE", "/api/v1/documents/{document_id}"): "delete_document",
    ("POST", "/api/v1/documents/{document_id}/version"): "create_version",
    ("GET", "/api/v1/documents/{document_id}/versions"): "list_versions",
    ("POST", "/api/v1/knowledge/upload"): "upload",
    ("POST", "/api/v1/knowledge/text"): "ingest_text",
    ("POST", "/api/v1/knowledge/crawl"): "crawl",
    ("POST", "/api/v1/knowledge/git"): "git",
    ("GET", "/api/v1/jobs"): "list_jobs",
    ("GET", "/api/v1/jobs/{job_id}"): "get_job",
    ("POST", "/api/v1/jobs/{job_id}/cancel"): "cancel_job",
    ("GET", "/api/v1/projects/{project_id}/sources"): "list_sources",
    ("GET", "/api/v1/sources/{source_id}"): "get_source",
    ("POST", "/api/v1/sources/{source_id}/sync"): "sync_source",
    ("PUT", "/api/v1/sources/{source_id}"): "update_source",
    ("DELETE", "/api/v1/sources/{source_id}"): "delete_source",
    ("POST", "/api/v1/jobs/{job_id}/retry"): "retry_job",
    ("POST", "/api/v1/rag/query"): "query",
}
# Served but deliberately not in lorebase-client: the official `openai` SDK is their client
# (tests/e2e/test_openai_compat.py).
OPENAI_ROUTES = {
    ("GET", "/openai/v1/models"),
    ("GET", "/openai/v1/models/{model}"),
    ("POST", "/openai/v1/chat/completions"),
}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    schema: dict[str, Any] = create_app().openapi()
    return schema


def test_every_api_operation_has_a_client_method(spec: dict[str, Any]) -> None:
    everything = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
    }
    served = {(method, path) for method, path in everything if path.startswith("/api/v1/")}
    assert everything - served == OPENAI_ROUTES, "routes outside /api/v1 the test does not know"
    assert served - set(OPERATIONS) == set(), "routes the client does not cover"
    assert set(OPERATIONS) - served == set(), "client methods for routes that are gone"
    for name in OPERATIONS.values():
        assert hasattr(Client, name), name
        assert hasattr(AsyncClient, name), name


@pytest.mark.parametrize("model", SCHEMA_MODELS, ids=lambda m: m.__name__)
def test_model_matches_the_servers_schema(model: type[Model], spec: dict[str, Any]) -> None:
    schema = spec["components"]["schemas"][model.__schema__]
    server_fields = set(schema["properties"])
    server_required = set(schema.get("required", []))
    client_fields = set(model.model_fields)
    client_required = {n for n, f in model.model_fields.items() if f.is_required()}
    assert client_fields - server_fields == set(), "fields the server does not send"
    assert server_fields - client_fields == set(), "fields the client drops"
    assert client_required <= server_required, "fields the client requires but may not get"
