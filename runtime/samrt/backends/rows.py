"""Splitting one call along its first axis into runs of at most ``rows_per_run`` rows, shared
over a pool of threads, the runs writing straight into the full outputs. Every backend's runner
uses this one scheduler; the graphs treat rows (images, prompts) independently, so the result
equals one run over the whole call."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..checks import check_int
from ..errors import InferenceError
from ..spec import TensorSpec

__all__ = ["RowScheduler", "RunPart", "allocate_outputs"]

# run_part(feeds, into): one backend run over a slice of rows. into: C-contiguous row slices of
# the full outputs to write into (returned as given), or None: the run allocates and returns
# its own outputs.
RunPart = Callable[[dict[str, Any], "dict[str, np.ndarray] | None"], dict[str, np.ndarray]]


def allocate_outputs(outputs: Mapping[str, TensorSpec], total: int) -> dict[str, np.ndarray] | None:
    """Empty [total, ...] arrays for ``outputs`` when every trailing axis is static, else None."""
    arrays = {}
    for name, spec in outputs.items():
        trailing = spec.shape[1:]
        if not all(isinstance(d, int) for d in trailing):
            return None
        arrays[name] = np.empty((total, *trailing), np.dtype(spec.dtype))
    return arrays


class RowScheduler:
    """rows_per_run: the most rows one run takes (0: no limit, calls are never split);
    workers: threads the runs of one call are shared over, the calling thread included (1: the
    calling thread runs them one after another). ``graph`` names the graph in errors."""

    def __init__(self, *, rows_per_run: int, workers: int = 1, graph: str) -> None:
        self.rows_per_run = check_int("rows_per_run", rows_per_run, low=0)
        workers = check_int("row_workers", workers, low=1)
        self.workers = workers if rows_per_run else 1
        self.graph = graph
        self._pool = (ThreadPoolExecutor(self.workers - 1, thread_name_prefix="samrt-rows")
                      if self.workers > 1 else None)

    def splits(self, total: int | None) -> bool:
        """True when a call of ``total`` rows runs as several runs."""
        return bool(self.rows_per_run) and total is not None and total > self.rows_per_run

    def run(self, feeds: Mapping[str, Any], *, rows: tuple[str, ...], total: int, run_part: RunPart,
            outputs: Mapping[str, TensorSpec]) -> dict[str, np.ndarray]:
        """Outputs of ``total`` rows, from runs of at most ``rows_per_run`` rows of the ``rows``
        inputs (the other inputs are passed whole to every run). Re-raises the first failure
        after every thread has stopped."""
        step = self.rows_per_run
        starts = range(0, total, step)
        full = allocate_outputs(outputs, total)
        if full is None:  # an output's trailing shape is symbolic: the first run tells it
            first = run_part(self._part(feeds, rows, 0), None)
            full = {name: np.empty((total, *value.shape[1:]), value.dtype) for name, value in first.items()}
            for name, value in first.items():
                full[name][:value.shape[0]] = value
            starts = starts[1:]
        taken = iter(starts)
        lock = threading.Lock()
        failed: list[BaseException] = []

        def work() -> None:
            while not failed:
                with lock:
                    start = next(taken, None)
                if start is None:
                    return
                try:
                    run_part(self._part(feeds, rows, start),
                             {name: array[start:start + step] for name, array in full.items()})
                except BaseException as exc:
                    failed.append(exc)
                    return

        pool = self._pool
        try:
            helpers = [] if pool is None else [pool.submit(work) for _ in range(min(self.workers, len(starts)) - 1)]
        except RuntimeError as exc:  # close() shut the pool down while this call was starting
            raise InferenceError("the runner was closed", graph=self.graph) from exc
        work()
        for helper in helpers:
            helper.result()
        if failed:
            raise failed[0]
        return full

    def _part(self, feeds: Mapping[str, Any], rows: tuple[str, ...], start: int) -> dict[str, Any]:
        stop = start + self.rows_per_run
        return {name: (value[start:stop] if name in rows else value) for name, value in feeds.items()}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
