"""Where the build spends its time: the slowest steps are listed at the end of every build."""

from __future__ import annotations

import contextlib
import time

SECONDS: dict[str, float] = {}


@contextlib.contextmanager
def timed(label: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        SECONDS[label] = SECONDS.get(label, 0.0) + time.perf_counter() - start


def summary(count: int = 8) -> str:
    slowest = sorted(SECONDS.items(), key=lambda kv: -kv[1])[:count]
    return ", ".join(f"{label} {seconds:.1f} s" for label, seconds in slowest)
