"""The one interface every backend's runner offers (:class:`Runner`), and its check.

A runner holds one loaded graph (a session, a plan, a compiled model) and runs it. ``SamRuntime``,
``samexport bench`` and ``samexport report`` use runners through this interface only, so a new
backend is a loader and a runner that satisfy it; nothing outside ``samrt.backends`` knows which
backend runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..spec import TensorSpec

__all__ = ["Runner", "check_runner", "DESCRIBE_KEYS"]

# Keys of Runner.describe(): backend name, providers (the backend's execution providers in
# priority order, or None where the backend has no such notion), device ("cpu" or "cuda"),
# threads (intra-op threads per run; 0: the backend's default), row_workers (threads one
# call's rows are shared over; 1: none).
DESCRIBE_KEYS = ("backend", "providers", "device", "threads", "row_workers")


@runtime_checkable
class Runner(Protocol):
    """One graph, ready to run.

    graph: the graph's role ("encoder", "decoder") or file name, for error messages.
    inputs / outputs: name -> :class:`samrt.spec.TensorSpec` as the loaded graph declares them
    (symbolic axes as strings), in the graph's order.
    infer(feeds): NumPy arrays by input name -> NumPy outputs by name; checks names, dtypes and
    ranks first (InvalidInputError), raises InferenceError when the backend fails or the runner
    is closed. Safe to call from several threads at once.
    close(): frees the graph; later calls raise InferenceError. ``closed`` tells.
    describe(): a dict with :data:`DESCRIBE_KEYS` (and any backend-specific extras).
    """

    graph: str

    @property
    def inputs(self) -> Mapping[str, TensorSpec]: ...

    @property
    def outputs(self) -> Mapping[str, TensorSpec]: ...

    @property
    def closed(self) -> bool: ...

    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


def check_runner(runner: Any) -> Runner:
    """``runner`` unchanged if it satisfies :class:`Runner` in full (members, their types and
    ``describe()``'s keys); TypeError naming what is missing otherwise."""
    if not isinstance(runner, Runner):
        missing = [name for name in ("graph", "inputs", "outputs", "closed", "infer", "close", "describe")
                   if not hasattr(runner, name)]
        raise TypeError(f"{type(runner).__name__} is not a samrt runner: it lacks {missing}")
    for side in ("inputs", "outputs"):
        specs = getattr(runner, side)
        if not isinstance(specs, Mapping) or not all(
                isinstance(s, TensorSpec) and s.name == n for n, s in specs.items()):
            raise TypeError(f"{type(runner).__name__}.{side} is not a mapping of name -> TensorSpec")
    missing_keys = [key for key in DESCRIBE_KEYS if key not in runner.describe()]
    if missing_keys:
        raise TypeError(f"{type(runner).__name__}.describe() lacks {missing_keys}")
    return runner
