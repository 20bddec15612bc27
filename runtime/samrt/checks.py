"""Checks of user arguments shared across samrt, each raising InvalidInputError that names the
argument, the value and what was expected."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import InvalidInputError

__all__ = ["check_int", "check_number", "rectangular_array"]


def check_int(argument: str, value: Any, *, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high] (numpy integers too; bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        expected = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"
        raise InvalidInputError(argument, value, expected)
    return int(value)


def check_number(argument: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite float (``positive``: > 0); strings and bools are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not math.isfinite(value) or (
            positive and value <= 0):
        raise InvalidInputError(argument, value, "a finite number" + (" > 0" if positive else ""))
    return float(value)


def rectangular_array(value: Any, argument: str) -> np.ndarray:
    """``value`` as a numpy array, refusing ragged nesting (numpy raises an untyped ValueError for
    an inhomogeneous shape). Dtype rules stay with the caller."""
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(argument, value, "a rectangular (nested) list or array") from exc
