"""Ctrl-C and SIGTERM that cannot be swallowed.

Python turns SIGINT into KeyboardInterrupt, but library code that catches BaseException (torch's
ONNX exporter does, while it tries its export strategies) can absorb it and carry on, so a user's
Ctrl-C would be ignored and the output published anyway. :func:`install` keeps a record of the
request besides raising; :func:`raise_if_requested` re-raises it at our own checkpoints (between
export steps, and before a staged directory is renamed into place). SIGTERM (``kill``, a job
scheduler, ``docker stop``) is treated the same way and raises :class:`Terminated`, a
KeyboardInterrupt, so every clean-up path that handles Ctrl-C handles it too.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

__all__ = ["Terminated", "install", "raise_if_requested", "reset", "exit_status", "describe", "finish"]

_requested = threading.Event()
_signal: list[int] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (raised where SIGINT would raise KeyboardInterrupt)."""


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if not _requested.is_set():
        _signal[:] = [signum]
    _requested.set()
    raise _interrupt(signum)


def install() -> None:
    """Route SIGINT and SIGTERM through the recorder (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)


def raise_if_requested() -> None:
    """Raise KeyboardInterrupt (Terminated for SIGTERM) if a signal arrived since :func:`install`,
    even if library code swallowed it."""
    if _requested.is_set():
        raise _interrupt(_signal[0] if _signal else signal.SIGINT)


def reset() -> None:
    _requested.clear()
    _signal.clear()


def exit_status(exc: BaseException) -> int:
    """128 + the signal number, as shells report it: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


def finish(code: object) -> NoReturn:
    """End the process with ``code`` (a ``SystemExit`` code) at the outermost entry point.

    After a real signal this is ``os._exit`` (streams flushed first) rather than ``sys.exit``:
    when the signal lands while a C extension runs Python code through the C API during its
    import (pybind11's ``exec``, as torch and onnxruntime use), CPython records the
    KeyboardInterrupt as unhandled although it was handled, and at shutdown kills the process
    with SIGINT instead of exiting with the status (seen as -2 instead of 130). Every ``with``
    block has cleaned up by the time the entry point gets here.
    """
    status = 0 if code is None else code if isinstance(code, int) else 1
    if not _requested.is_set():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said anyway
            pass
    os._exit(status)


def describe(exc: BaseException) -> str:
    return "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (Ctrl-C)"
