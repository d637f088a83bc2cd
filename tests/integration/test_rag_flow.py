"""The whole path through the real routes: upload -> worker -> query (cached) -> new document
version -> worker -> the cached answer is gone and only the latest version is searched;
deleting the document also empties the answer."""

from __future__ import annotations

import httpx

from lorebase.context import AppContext
from tests.factories import create_project, register_user
from tests.integration.test_ingest_upload import drain

POLICY_V1 = """# Refund policy

Customers may return a product within 14 days of delivery for a full refund.
Refunds are paid to the original payment method within five working days.
"""

POLICY_V2 = """# Refund policy

Customers may return a product within 30 days of delivery for a full refund.
Refunds are paid to the original payment method within five working days.
"""

QUERY = "/api/v1/rag/query"


async def test_upload_query_new_version_query(ctx: AppContext, client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    project = await create_project(client, user.headers)
    upload = await client.post(
        "/api/v1/knowledge/upload",
        headers=user.headers,
        data={"project_id": project["id"]},
        files={"file": ("refunds.md", POLICY_V1.encode(), "text/markdown")},
    )
    assert upload.status_code == 202, upload.text
    document_id = upload.json()["document_id"]
    await drain(ctx)

    ask = {
        "project_id": project["id"],
        "query_text": "How many days do customers have to return a product?",
        "top_k": 3,
        "use_hybrid_search": True,
        "use_agentic_rag": True,
    }
    first = (await client.post(QUERY, json=ask, headers=user.headers)).json()
    assert first["cached"] is False
    assert "14 days" in first["results"][0]["chunk_text"]
    assert first["results"][0]["version"] == "1.0.0"
    assert "14 days" in first["synthesized_answer"]
    assert first["citations"]
    again = (await client.post(QUERY, json=ask, headers=user.headers)).json()
    assert again["cached"] is True

    version = await client.post(
        f"/api/v1/documents/{document_id}/version",
        json={"content": POLICY_V2, "bump": "minor"},
        headers=user.headers,
    )
    assert version.status_code == 201, version.text
    await drain(ctx)

    after = (await client.post(QUERY, json=ask, headers=user.headers)).json()
    assert after["cached"] is False
    texts = " ".join(r["chunk_text"] for r in after["results"])
    assert "30 days" in texts
    assert "14 days" not in texts
    assert {r["version"] for r in after["results"]} == {"1.1.0"}
    assert "30 days" in after["synthesized_answer"]
    for citation in after["citations"]:
        cited = next(r for r in after["results"] if r["id"] == citation["result_id"])
        assert citation["quote"] in cited["chunk_text"]

    deleted = await client.delete(f"/api/v1/documents/{document_id}", headers=user.headers)
    assert deleted.status_code == 204
    gone = (await client.post(QUERY, json=ask, headers=user.headers)).json()
    assert gone["cached"] is False
    assert gone["results"] == []
    assert "do not contain" in gone["synthesized_answer"]
