"""Ctrl-C that cannot be swallowed.

Python turns SIGINT into KeyboardInterrupt, but library code that catches BaseException (torch's
ONNX exporter does, while it tries its export strategies) can absorb it and carry on, so a user's
Ctrl-C would be ignored and the output published anyway. :func:`install` keeps a record of the
request besides raising KeyboardInterrupt; :func:`raise_if_requested` re-raises it at our own
checkpoints (between export steps, and before a staged directory is renamed into place).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_requested = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _requested.set()
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT through the recorder (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)


def raise_if_requested() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed since :func:`install`, even if swallowed."""
    if _requested.is_set():
        raise KeyboardInterrupt


def reset() -> None:
    _requested.clear()
