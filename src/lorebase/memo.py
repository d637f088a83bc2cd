"""A bounded per-process LRU of counts with single flight: concurrent requests that miss the
same key wait for one count instead of each counting it (retrieval's document frequencies).
It lives low so that the running context can hold one, typed."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
MEMO_ENTRIES = 20_000


class Abandoned(Exception):
    """The request counting a key failed or was cancelled: its waiters count themselves."""


class CountMemo(Generic[K]):
    """A bounded LRU of counts (retrieval keeps it in front of Redis). Concurrent requests
    that miss the same key wait for one count (`claim`, `pending`, `settle`)."""

    def __init__(self, entries: int = MEMO_ENTRIES) -> None:
        self.entries = entries
        self._items: OrderedDict[K, int] = OrderedDict()
        self._pending: dict[K, asyncio.Future[int]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> int | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: int) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def pending(self, key: K) -> asyncio.Future[int] | None:
        return self._pending.get(key)

    def claim(self, keys: list[K]) -> None:
        loop = asyncio.get_running_loop()
        for key in keys:
            self._pending[key] = loop.create_future()

    def settle(self, keys: list[K], values: list[int] | None) -> None:
        """Resolve claimed keys with `values` (remembered), or abandon them (None)."""
        for i, key in enumerate(keys):
            future = self._pending.pop(key, None)
            if values is not None:
                self.put(key, values[i])
            if future is None or future.done():
                continue
            if values is not None:
                future.set_result(values[i])
            else:
                future.set_exception(Abandoned())
                future.exception()  # retrieved: no "never retrieved" log if nobody waits
