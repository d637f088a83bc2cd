"""Real English text that ships with Python, so the benchmark needs no download: the Language
Reference topics of `pydoc_data.topics` and the docstrings of a fixed list of stdlib modules."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import random
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

# Modules whose docstrings form part of the corpus (sorted for a stable order).
MODULES = (
    "abc", "argparse", "ast", "asyncio", "asyncio.streams", "asyncio.tasks", "base64", "bisect",
    "calendar", "codecs", "collections", "concurrent.futures", "configparser", "contextlib",
    "copy", "csv", "dataclasses", "datetime", "decimal", "difflib", "dis", "doctest",
    "email.message", "email.utils", "enum", "filecmp", "fnmatch", "fractions", "ftplib",
    "functools", "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html.parser",
    "http.client", "http.server", "imaplib", "inspect", "io", "itertools", "json", "linecache",
    "locale", "logging", "lzma", "mailbox", "mimetypes", "multiprocessing", "numbers",
    "operator", "optparse", "os", "pathlib", "pdb", "pickle", "platform", "pprint", "pstats",
    "pydoc", "queue", "random", "re", "reprlib", "sched", "secrets", "selectors", "shlex",
    "shutil", "signal", "smtplib", "socket", "socketserver", "sqlite3", "ssl", "statistics",
    "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit",
    "tokenize", "tomllib", "trace", "traceback", "typing", "unittest", "urllib.parse",
    "urllib.request", "uuid", "warnings", "weakref", "wsgiref.simple_server",
    "xml.etree.ElementTree", "xmlrpc.client", "zipfile", "zoneinfo",
)  # fmt: skip


@dataclass(frozen=True)
class Document:
    name: str
    text: str


def _module_text(module: ModuleType) -> str:
    parts = [inspect.getdoc(module) or ""]
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        doc = inspect.getdoc(obj)
        if doc:
            parts.append(f"{name}\n{doc}")
        if inspect.isclass(obj):
            for member_name, member in sorted(vars(obj).items()):
                if member_name.startswith("_") or not callable(member):
                    continue
                member_doc = inspect.getdoc(member)
                if member_doc:
                    parts.append(f"{name}.{member_name}\n{member_doc}")
    return "\n\n".join(part for part in parts if part)


# Debian's machine-readable copyright files: real, varied English (licences, notices), present
# on every Debian/Ubuntu machine. Only distinct texts of this size range are taken.
DEBIAN_DOCS = Path("/usr/share/doc")
DEBIAN_MIN_CHARS = 20_000
DEBIAN_MAX_CHARS = 120_000


def debian_documents(count: int) -> list[Document]:
    """Up to `count` distinct Debian copyright files (package order), 20-120 kB each."""
    out: list[Document] = []
    seen: set[str] = set()
    for path in sorted(DEBIAN_DOCS.glob("*/copyright")):
        if len(out) >= count:
            break
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
        if digest in seen or not DEBIAN_MIN_CHARS <= len(text) <= DEBIAN_MAX_CHARS:
            continue
        seen.add(digest)
        out.append(Document(f"debian-{path.parent.name}-copyright.txt", text))
    return out


def documents(max_bytes: int | None = None, *, files: int | None = None) -> list[Document]:
    """The corpus as documents, Language Reference topics first; at most `max_bytes` of text.
    With `files`, Debian copyright files top the Python text up to that many documents (the
    side-by-side corpus: 200 files, about 2 MB)."""
    docs = _python_documents()
    if files is not None and len(docs) < files:
        docs += debian_documents(files - len(docs))
    if max_bytes is None:
        return docs
    out: list[Document] = []
    total = 0
    for doc in docs:
        if total >= max_bytes:
            break
        out.append(doc)
        total += len(doc.text)
    return out


def _python_documents() -> list[Document]:
    from pydoc_data.topics import topics

    docs = [Document(f"topic-{key}.txt", topics[key]) for key in sorted(topics)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some modules warn on import (deprecations)
        for name in MODULES:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
            text = _module_text(module)
            if len(text) > 200:
                docs.append(Document(f"module-{name}.txt", text))
    return docs


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]+")


def queries(docs: list[Document], count: int, *, seed: int) -> list[str]:
    """`count` distinct search queries: 4-10 consecutive words taken from the corpus."""
    rng = random.Random(seed)
    words = [w for doc in docs for w in _WORD.findall(doc.text)]
    if len(words) < 20:
        raise ValueError("corpus too small for queries")
    seen: dict[str, None] = {}
    attempts = 0
    while len(seen) < count and attempts < count * 50:
        attempts += 1
        size = rng.randint(4, 10)
        start = rng.randrange(0, len(words) - size)
        seen.setdefault(" ".join(words[start : start + size]), None)
    return list(seen)
