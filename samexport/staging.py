"""Write a directory atomically: build it in a hidden sibling, rename it into place at the end.

An interrupted or failed write leaves no directory that looks valid (the sibling is removed).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .interrupts import raise_if_requested


@contextmanager
def staged_directory(out_dir: Path) -> Iterator[Path]:
    """Yield an empty staging directory beside ``out_dir``; on normal exit it replaces
    ``out_dir`` (an existing one is removed first); on any exception, or when Ctrl-C was
    pressed and swallowed by library code meanwhile, it is deleted."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield staging
        raise_if_requested()
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
