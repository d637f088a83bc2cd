"""Wall-clock spans of one request, in milliseconds, as responses report them (`timings_ms`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


def elapsed_ms(start: float) -> float:
    """Milliseconds since `start` (a `time.perf_counter()` value), to 0.01 ms."""
    return round((time.perf_counter() - start) * 1000, 2)


@contextmanager
def sample_ms(latencies: list[float]) -> Iterator[None]:
    """Append the block's wall-clock time in milliseconds to `latencies` (when it returns)."""
    start = time.perf_counter()
    yield
    latencies.append((time.perf_counter() - start) * 1000)


class Timer:
    """Collects named spans into `timings_ms`; `stop()` adds `total`, the time since the start."""

    def __init__(
        self, timings_ms: dict[str, float] | None = None, *, started: float | None = None
    ) -> None:
        self.started = time.perf_counter() if started is None else started
        self.timings_ms: dict[str, float] = {} if timings_ms is None else timings_ms

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        """Time the block as `name` (also when it raises)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_ms[name] = elapsed_ms(start)

    def stop(self) -> dict[str, float]:
        """Record `total` and return the timings."""
        self.timings_ms["total"] = elapsed_ms(self.started)
        return self.timings_ms
