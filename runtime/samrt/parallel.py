"""One small shared thread pool for the NumPy / Pillow work that releases the GIL
(image resizing, mask upscaling). Sized to the machine's cores, at most 4; created on first use."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

__all__ = ["parallel_map", "worker_count", "split_range"]

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def worker_count() -> int:
    """Threads the pool uses: ``os.cpu_count()`` capped to 4 (1 on a single core)."""
    return max(1, min(4, os.cpu_count() or 1))


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=worker_count(), thread_name_prefix="samrt")
        return _pool


def parallel_map(function: Callable, items: Iterable) -> list:
    """``[function(item) for item in items]`` on the shared threads (inline for one item).
    Exceptions propagate to the caller."""
    items = list(items)
    if len(items) <= 1 or worker_count() == 1:
        return [function(item) for item in items]
    return list(_executor().map(function, items))


def split_range(length: int, parts: int) -> list[tuple[int, int]]:
    """[0, length) cut into at most ``parts`` near-equal, non-empty (start, end) pieces."""
    edges = [length * k // parts for k in range(parts + 1)]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
