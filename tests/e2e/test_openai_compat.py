"""The official `openai` SDK against a real `lorebase serve` (issue 17): a cited answer sync,
async and streamed, the models list, the typed errors, and the chat model going down. The chat
model is a loopback server speaking OpenAI's protocol; documents are ingested by the server's
own job queue and embedded by the local model."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.contract.fake_vendor import FakeVendor, Reply
from tests.contract.test_openai import chunk, completion
from tests.e2e.conftest import LorebaseServer, service_pids

# A server start and an ingestion on a loaded machine can take minutes (setup counts here).
pytestmark = pytest.mark.timeout(900)

HANDBOOK = (
    "# Handbook\n\n## Holidays\n\nEvery employee gets 30 days of paid holiday a year, "
    "booked through the team calendar.\n\n## Equipment\n\nLaptops are replaced every three years.\n"
)
QUOTE = "Every employee gets 30 days of paid holiday a year"
PASSWORD = "a long enough password"


def _source_of(prompt: str, needle: str) -> int:
    number = 0
    for line in prompt.splitlines():
        match = re.match(r"^\[(\d+)\] ", line)
        number = int(match.group(1)) if match else number
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} is not in the prompt")


def _answer(path: str, body: Any) -> Reply:
    """An LLM that quotes the holiday passage and cites its source number."""
    text = f'Employees get "{QUOTE}" [{_source_of(body["messages"][-1]["content"], "30 days")}].'
    if body.get("stream"):
        pieces = [text[:10], text[10:30], text[30:]]
        return Reply(sse=[chunk(None), *[chunk(p) for p in pieces], chunk(None, "stop")])
    return Reply(json=completion(text))


def _down(path: str, body: Any) -> Reply:
    return Reply(status=503, json={"error": {"message": "overloaded", "type": "server_error"}})


@pytest.fixture(scope="module")
def vendor() -> Iterator[FakeVendor]:
    fake = FakeVendor(default=_answer)
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, vendor: FakeVendor) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("openai")
    (root / "data").mkdir()
    env = {
        "LLM_PROVIDER": "openai",
        "LLM_MODEL": "gpt-4o-mini",
        "OPENAI_API_KEY": "sk-test-" + "e" * 32,
        "OPENAI_BASE_URL": vendor.url + "/v1",
        "PROVIDER_MAX_RETRIES": "0",
    }
    server = LorebaseServer(root / "data", env=env)
    try:
        server.start(timeout=400)
        yield {"server": server, **_seed(server.url)}
    finally:
        if server.process is not None:
            server.stop()
        for pid in service_pids(server.data_dir):
            os.kill(pid, signal.SIGKILL)


def _user(http: httpx.Client) -> dict[str, str]:
    name = f"u{uuid.uuid4().hex[:8]}"
    http.post("/api/v1/auth/register", json={"username": name, "password": PASSWORD})
    token = http.post("/api/v1/auth/token", data={"username": name, "password": PASSWORD})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def _seed(url: str) -> dict[str, str]:
    """A user with a handbook project and an API key; another user's project beside it."""
    with httpx.Client(base_url=url, timeout=30) as http:
        owner, stranger = _user(http), _user(http)
        project = http.post("/api/v1/projects", json={"name": "handbook"}, headers=owner).json()
        other = http.post("/api/v1/projects", json={"name": "secret"}, headers=stranger).json()
        text = {"project_id": project["id"], "name": "handbook.md", "text": HANDBOOK}
        job_id = http.post("/api/v1/knowledge/text", json=text, headers=owner).json()["job_id"]
        deadline = time.monotonic() + 300
        while (job := http.get(f"/api/v1/jobs/{job_id}", headers=owner).json())["status"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["status"] == "succeeded", job
        key = {"name": "chat", "scopes": ["read"]}
        secret = http.post("/api/v1/api-keys", json=key, headers=owner).json()["key"]
    return {"model": project["id"], "other": other["id"], "key": secret}


def _client(setup: Any, api_key: str | None = None) -> openai.OpenAI:
    base = setup["server"].url + "/openai/v1"
    return openai.OpenAI(base_url=base, api_key=api_key or setup["key"], max_retries=0)


def _ask(question: str) -> list[Any]:
    return [{"role": "user", "content": question}]


def test_sync_sdk_gets_a_cited_answer(setup: Any) -> None:
    answer = _client(setup).chat.completions.create(
        model=setup["model"], messages=_ask("how many days of holiday do I get?")
    )
    content = answer.choices[0].message.content or ""
    (citation,) = (answer.model_extra or {})["citations"]
    assert content.startswith("Employees get")
    assert f"[{citation['number']}]" in content
    assert citation["quote"] == QUOTE
    assert citation["document_name"] == "handbook.md"
    assert citation["version"]
    assert answer.usage is not None
    assert answer.usage.total_tokens > 0


def test_sync_sdk_streams_with_citations_on_the_last_chunk(setup: Any) -> None:
    stream = _client(setup).chat.completions.create(
        model=setup["model"], messages=_ask("how much paid holiday is there?"), stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    (citation,) = (chunks[-1].model_extra or {})["citations"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert text.startswith("Employees get")
    assert f"[{citation['number']}]" in text
    assert citation["quote"] == QUOTE


def test_async_sdk_answers_and_streams(setup: Any) -> None:
    async def flow() -> tuple[Any, list[Any]]:
        base = setup["server"].url + "/openai/v1"
        async with openai.AsyncOpenAI(base_url=base, api_key=setup["key"], max_retries=0) as ai:
            ask = _ask("holiday allowance per year?")
            answer = await ai.chat.completions.create(model=setup["model"], messages=ask)
            stream = await ai.chat.completions.create(
                model=setup["model"], messages=_ask("yearly holiday days?"), stream=True
            )
            return answer, [c async for c in stream]

    answer, chunks = asyncio.run(flow())
    assert (answer.model_extra or {})["citations"][0]["quote"] == QUOTE
    assert chunks[-1].model_dump()["citations"][0]["quote"] == QUOTE


def test_models_list_shows_only_readable_projects(setup: Any) -> None:
    models = _client(setup).models.list()
    assert [(m.id, m.model_dump()["name"]) for m in models.data] == [(setup["model"], "handbook")]


def test_sdk_raises_typed_errors(setup: Any) -> None:
    client = _client(setup)
    with pytest.raises(openai.AuthenticationError):
        _client(setup, api_key="lb_wrong").chat.completions.create(
            model=setup["model"], messages=_ask("hi?")
        )
    with pytest.raises(openai.NotFoundError) as hidden:
        client.chat.completions.create(model=setup["other"], messages=_ask("hi?"))
    with pytest.raises(openai.BadRequestError) as malformed:
        client.chat.completions.create(model=setup["model"], messages=[])
    assert isinstance(hidden.value.body, dict)
    assert hidden.value.body["code"] == "model_not_found"
    assert isinstance(malformed.value.body, dict)
    assert malformed.value.body["param"] == "messages"


def test_chat_model_down_is_an_error_from_the_sdk(setup: Any, vendor: FakeVendor) -> None:
    vendor.default = _down
    try:
        client = _client(setup)
        with pytest.raises(openai.InternalServerError) as down:
            client.chat.completions.create(model=setup["model"], messages=_ask("laptops?"))
        stream = client.chat.completions.create(
            model=setup["model"], messages=_ask("when are laptops replaced?"), stream=True
        )
        with pytest.raises(openai.APIError) as mid_stream:
            list(stream)
    finally:
        vendor.default = _answer
    assert down.value.status_code == 503
    assert isinstance(mid_stream.value.body, dict)
    assert mid_stream.value.body["code"] == "provider_unavailable"
