"""The input check every runner makes before it runs: names, dtypes and ranks against the
graph's :class:`samrt.spec.TensorSpec` s, and agreement of the row inputs' leading sizes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..spec import TensorSpec

__all__ = ["Described", "check_feeds", "row_inputs", "leading_rows", "numpy_shape_and_dtype"]

Described = tuple[tuple[int, ...], np.dtype]  # (shape, dtype) of one feed


def numpy_shape_and_dtype(value: Any) -> Described:
    if not isinstance(value, np.ndarray):
        raise InvalidInputError("feeds", type(value).__name__, "NumPy arrays")
    return tuple(value.shape), value.dtype


def check_feeds(feeds: Mapping[str, Any], inputs: Mapping[str, TensorSpec],
                describe: Callable[[Any], Described] = numpy_shape_and_dtype) -> dict[str, Described]:
    """(shape, dtype) per feed, after checking that ``feeds`` names exactly ``inputs`` and each
    has the declared dtype and rank (InvalidInputError naming the input). ``describe`` reads a
    feed's shape and dtype (a backend taking device arrays passes its own)."""
    if set(feeds) != set(inputs):
        raise InvalidInputError("feeds", sorted(feeds), f"exactly the inputs {sorted(inputs)}")
    described = {}
    for name, value in feeds.items():
        shape, dtype = describe(value)
        expected = inputs[name]
        if dtype.name != expected.dtype:
            raise InvalidInputError(name, dtype.name, expected.dtype)
        if len(shape) != len(expected.shape):
            raise InvalidInputError(name, shape, f"rank {len(expected.shape)} {list(expected.shape)}")
        described[name] = (shape, dtype)
    return described


def row_inputs(inputs: Mapping[str, TensorSpec]) -> tuple[str, ...]:
    """Inputs whose leading axis is symbolic (images of the encoder, prompts of the decoder):
    those a call may be split along."""
    return tuple(name for name, s in inputs.items() if s.shape and isinstance(s.shape[0], str))


def leading_rows(described: Mapping[str, Described], rows: tuple[str, ...]) -> int | None:
    """The shared leading size of the ``rows`` inputs (None without row inputs);
    InvalidInputError when they disagree."""
    sizes = {described[name][0][0] for name in rows}
    if len(sizes) > 1:
        raise InvalidInputError("feeds", {name: described[name][0] for name in rows},
                                "the same leading size (rows) for every row input")
    return sizes.pop() if sizes else None
