"""One provider outage, one problem: the embedding vendor is down (a loopback server speaking
OpenAI's embeddings protocol answers 503), and a semantic query gets the same problem status
and type over REST (problem+json), SSE (the `error` event) and MCP (a tool error carrying the
problem), because all three render `lorebase.errors.problem_from`."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from lorebase.context import AppContext
from lorebase.errors import PROBLEM_BASE
from lorebase.providers.registry import build_embedder
from tests.contract.fake_vendor import FakeVendor, Reply
from tests.factories import create_project, register_user
from tests.integration.test_mcp_http import mcp_session, problem, serving
from tests.integration.test_rag_api import _events
from tests.retrieval_seed import seed_document

KEY = "sk-test-" + "o" * 32
QUERY = "/api/v1/rag/query"
LOOPS = ["The break statement terminates the nearest enclosing loop.", "A for loop iterates."]


@pytest.fixture
def down_vendor() -> AsyncIterator[FakeVendor]:
    fake = FakeVendor(
        default=lambda path, body: Reply(
            503, {"error": {"message": f"overloaded ({KEY})", "type": "server_error"}}
        )
    )
    yield fake
    fake.stop()


def _outage_context(ctx: AppContext, vendor: FakeVendor) -> AppContext:
    """`ctx` with an OpenAI-protocol embedder in the project's embedding space (same model id
    and dimension as the local one), pointed at the vendor that is down."""
    settings = ctx.settings.model_copy(
        update={
            "embedding_provider": "openai",
            "embedding_model": ctx.embedder.model_id,
            "embedding_dimensions": ctx.embedder.dimension,
            "openai_api_key": SecretStr(KEY),
            "openai_base_url": vendor.url + "/v1",
            "provider_max_retries": 0,
            "provider_read_timeout": 5.0,
        }
    )
    embedder = build_embedder(settings, ctx.registry)
    assert (embedder.model_id, embedder.dimension) == (ctx.embedder.model_id, 384)
    return dataclasses.replace(ctx, settings=settings, embedder=embedder)


async def test_embedding_outage_is_one_problem_on_rest_sse_and_mcp(
    ctx: AppContext, down_vendor: FakeVendor
) -> None:
    context = _outage_context(ctx, down_vendor)
    async with serving(context) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        user = await register_user(http)
        project = await create_project(http, user.headers)
        # Passages to search (embedded by the local model): an empty project needs no vector.
        await seed_document(ctx, project_id=uuid.UUID(project["id"]), name="loops.md", chunks=LOOPS)

        def query() -> dict[str, Any]:
            # A new text each time: no transport may answer from the query-embedding cache.
            return {
                "project_id": project["id"],
                "query_text": f"how do loops end {uuid.uuid4().hex}",
                "use_hybrid_search": False,
            }

        rest = await http.post(QUERY, json=query(), headers=user.headers)
        streamed = await http.post(
            QUERY, json=query(), headers={**user.headers, "Accept": "text/event-stream"}
        )
        async with mcp_session(url, user.headers) as session:
            tool = problem(await session.call_tool("query_knowledge", query()))

    assert rest.status_code == 503, rest.text
    assert rest.headers["content-type"] == "application/problem+json"
    rest_body = rest.json()
    assert int(rest.headers["retry-after"]) >= 1

    assert streamed.status_code == 200
    events = _events(streamed.text)
    assert [name for name, _ in events] == ["error"]
    sse_body = events[-1][1]

    bodies = {"rest": rest_body, "sse": sse_body, "mcp": tool}
    for transport, body in bodies.items():
        assert body["status"] == 503, (transport, body)
        assert body["type"] == PROBLEM_BASE + "service-unavailable", (transport, body)
        assert body["title"] == rest_body["title"], transport
        assert body["retry_after"] == int(rest.headers["retry-after"]), (transport, body)
        assert "embedding provider is unavailable" in body["detail"], (transport, body)
        assert body["request_id"], transport
        assert KEY not in str(body), f"{transport} leaked the vendor key"
    assert len(down_vendor.calls("/v1/embeddings")) == 3, "one vendor call per transport"
