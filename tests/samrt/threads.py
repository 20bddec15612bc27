"""A check shared by the backends' thread-safety tests."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def assert_threads_match_serial(function: Callable[[Any], np.ndarray], arguments: Sequence[Any]) -> None:
    """``function`` on each argument from one thread per argument, all at once, gives exactly
    what it gives called one after another."""
    serial = [function(argument) for argument in arguments]
    results: list = [None] * len(arguments)

    def work(i: int) -> None:
        results[i] = function(arguments[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(arguments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, serial, strict=True):
        np.testing.assert_array_equal(got, want)
