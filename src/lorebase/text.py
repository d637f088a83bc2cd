"""One rule for every string a client sends: no NUL and no Unicode non-characters.

PostgreSQL refuses NUL in text (every such string was a 500 with a traceback), and
non-characters (U+FDD0..U+FDEF, U+xFFFE/U+xFFFF) and lone surrogates are never text. Input
holding one is refused with a 422 naming the field (`api.guard` for JSON bodies, query strings
and forms, `SafeStr` in schemas, `mcp.runtime` for tool arguments); search text may instead be
cleaned with `strip_forbidden`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator

_PLANE_ENDS = "".join(chr(plane << 16 | end) for plane in range(17) for end in (0xFFFE, 0xFFFF))
FORBIDDEN = re.compile("[\x00\ud800-\udfff\ufdd0-\ufdef" + _PLANE_ENDS + "]")
REASON = "must not contain NUL or other non-characters"


def has_forbidden(value: str) -> bool:
    """True when `value` holds NUL, a lone surrogate or a non-character."""
    return FORBIDDEN.search(value) is not None


def strip_forbidden(value: str) -> str:
    """`value` without NUL, lone surrogates and non-characters."""
    return FORBIDDEN.sub("", value)


def _refuse(value: str) -> str:
    if has_forbidden(value):
        raise ValueError(REASON)
    return value


SafeStr = Annotated[str, AfterValidator(_refuse)]
"""A `str` that refuses NUL and non-characters (a 422 naming the field)."""


def forbidden_paths(value: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The paths (keys and list indexes) of every string in decoded JSON `value`, keys
    included, that holds a forbidden character."""
    if isinstance(value, str):
        if has_forbidden(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and has_forbidden(key):
                yield (*path, strip_forbidden(key))
            yield from forbidden_paths(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from forbidden_paths(item, (*path, str(index)))


def clean_tags(tags: list[str]) -> list[str]:
    """The one tag rule: each stripped to 1-64 characters, duplicates dropped (first kept);
    ValueError otherwise."""
    cleaned: dict[str, None] = {}
    for tag in tags:
        tag = tag.strip()
        if not tag or len(tag) > 64:
            raise ValueError("tags must be 1-64 characters")
        cleaned.setdefault(tag, None)
    return list(cleaned)
