"""`cross-encoder`: an ONNX cross-encoder (e.g. ms-marco-MiniLM) run with onnxruntime.

`RERANK_MODEL_PATH` names the `.onnx` file, or a directory holding `model.onnx` (or
`onnx/model.onnx`); the Hugging Face `tokenizer.json` sits beside the file or one level up.
The graph takes `input_ids`, `attention_mask` and (if declared) `token_type_ids` for
(query, passage) pairs and returns one logit per pair (or two: not relevant / relevant).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from lorebase.providers.base import BadResponse, ProviderUnavailable
from lorebase.providers.registry import Registry

NAME = "cross-encoder"
MAX_LENGTH = 512


def resolve_model_files(path: Path) -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) for a file or directory path."""
    if path.is_dir():
        candidates = [path / "model.onnx", path / "onnx" / "model.onnx"]
        model = next((c for c in candidates if c.is_file()), None)
        if model is None:
            raise ProviderUnavailable(f"no model.onnx under {path}", provider=NAME)
    elif path.is_file():
        model = path
    else:
        raise ProviderUnavailable(f"RERANK_MODEL_PATH {path} does not exist", provider=NAME)
    for folder in (model.parent, model.parent.parent):
        if (folder / "tokenizer.json").is_file():
            return model, folder / "tokenizer.json"
    raise ProviderUnavailable(f"no tokenizer.json beside {model}", provider=NAME)


class CrossEncoderReranker:
    """Scores (query, passage) pairs in a worker thread; scores are probabilities in [0, 1]."""

    def __init__(
        self, model_path: Path, *, max_length: int = MAX_LENGTH, batch_size: int = 16
    ) -> None:
        self._path = model_path
        self._max_length = max_length
        self._batch_size = batch_size
        self._session: ort.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._inputs: set[str] = set()
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"{NAME}:{self._path.resolve()}"

    def _load(self) -> tuple[ort.InferenceSession, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                model, tokenizer_file = resolve_model_files(self._path)
                tokenizer = Tokenizer.from_file(str(tokenizer_file))
                tokenizer.no_padding()
                tokenizer.no_truncation()
                tokenizer.enable_truncation(max_length=self._max_length, strategy="only_second")
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106
                options = ort.SessionOptions()
                options.intra_op_num_threads = max(1, min(4, os.cpu_count() or 1))
                options.inter_op_num_threads = 1
                try:
                    session = ort.InferenceSession(
                        str(model), sess_options=options, providers=["CPUExecutionProvider"]
                    )
                except Exception as exc:  # onnxruntime raises its own untyped errors
                    raise ProviderUnavailable(
                        f"cannot load cross-encoder {model.name}: {type(exc).__name__}",
                        provider=NAME,
                    ) from exc
                self._inputs = {i.name for i in session.get_inputs()}
                self._session, self._tokenizer = session, tokenizer
            return self._session, self._tokenizer

    def score_sync(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        session, tokenizer = self._load()
        scores: list[float] = []
        for start in range(0, len(passages), self._batch_size):
            batch = [(query, p) for p in passages[start : start + self._batch_size]]
            scores.extend(self._score_batch(session, tokenizer, batch))
        return scores

    def _score_batch(
        self, session: ort.InferenceSession, tokenizer: Tokenizer, pairs: list[tuple[str, str]]
    ) -> list[float]:
        encodings = tokenizer.encode_batch(pairs)
        feeds: dict[str, Any] = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        outputs = session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})
        logits = np.asarray(outputs[0], dtype=np.float64)
        if logits.ndim == 2 and logits.shape[1] == 2:
            # [not relevant, relevant]: the softmax probability of "relevant".
            exp = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs = exp / exp.sum(axis=1, keepdims=True)
            values = probs[:, 1]
        else:
            values = 0.5 * (1.0 + np.tanh(logits.reshape(len(pairs), -1)[:, 0] / 2.0))  # sigmoid
        if values.shape != (len(pairs),) or not np.all(np.isfinite(values)):
            raise BadResponse("cross-encoder returned an unusable output", provider=NAME)
        return [float(v) for v in values]

    async def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """Score off the event loop."""
        return await asyncio.to_thread(self.score_sync, query, list(passages))


def _factory(settings: Any) -> CrossEncoderReranker:
    path = getattr(settings, "rerank_model_path", None)
    if path is None:
        raise ProviderUnavailable("RERANK_MODEL_PATH is not set", provider=NAME)
    return CrossEncoderReranker(Path(path))


def register(registry: Registry) -> None:
    registry.register_reranker(NAME, _factory)
