"""Write an engine directory atomically, and never remove anything we did not write.

The new directory is built in a hidden sibling (``.NAME.partial-XXXX``) and swapped into place
at the end. An interrupted or failed write removes the sibling and leaves ``out_dir`` as it was.

What may be replaced (checked before any work starts, and again just before the swap):
- a path that does not exist, or an empty directory;
- an engine directory written by samexport — one whose ``manifest.json`` lists every file in it —
  and only when ``overwrite`` is True. It is renamed aside, the new one renamed into place, and
  then the old one removed.
Anything else (a file, a directory with other contents, an engine directory holding files its
manifest does not list) is refused with :class:`samrt.errors.OutputError`, as is an output that
is, contains or lies inside one of the command's inputs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from samrt import spec
from samrt.errors import OutputError

from .interrupts import raise_if_requested

__all__ = ["staged_directory", "check_replaceable", "check_no_overlap"]


def _manifest_files(directory: Path) -> set[str] | None:
    """The file names an engine manifest in ``directory`` accounts for, or None when
    ``directory`` holds no manifest samexport could have written."""
    try:
        manifest = json.loads((directory / spec.MANIFEST_NAME).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("schema_version"), int):
        return None
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, dict) or not isinstance(manifest.get("graphs"), dict):
        return None
    return {spec.MANIFEST_NAME, *(name for name in artifacts if isinstance(name, str))}


def check_replaceable(out_dir: Path, *, overwrite: bool) -> None:
    """Raise OutputError unless ``out_dir`` may be written (see the module docstring)."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise OutputError("exists and is not a directory; choose another output", path=str(out_dir))
    try:
        entries = sorted(entry.name for entry in out_dir.iterdir())
    except OSError as exc:
        raise OutputError(f"cannot be read ({exc.strerror or exc})", path=str(out_dir)) from exc
    if not entries:
        return
    known = _manifest_files(out_dir)
    if known is None:
        raise OutputError(
            "exists and is not an engine directory written by samexport (it has no engine manifest); "
            "nothing was changed: choose a new or empty directory", path=str(out_dir))
    foreign = [name for name in entries if name not in known or not (out_dir / name).is_file()
               or (out_dir / name).is_symlink()]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputError(
            f"is an engine directory that also holds files its manifest does not list ({shown}); "
            "nothing was changed: move them out or choose another output", path=str(out_dir))
    if not overwrite:
        raise OutputError("is an existing engine directory; pass --overwrite (overwrite=True) to replace it",
                          path=str(out_dir))


def check_no_overlap(out_dir: Path, sources: Iterable[str | Path]) -> None:
    """Raise OutputError when ``out_dir`` is, contains or lies inside one of ``sources``
    (paths that do not exist are skipped: e.g. ``random:tiny``)."""
    target = out_dir.resolve()
    for source in sources:
        source = Path(source)
        if not source.exists():
            continue
        origin = source.resolve()
        if target == origin or origin in target.parents or target in origin.parents:
            raise OutputError(f"the output overlaps the input {source}; give --out (out_dir) a path outside it", path=str(out_dir))


def _new_sibling(out_dir: Path, tag: str) -> Path:
    """A new empty directory beside ``out_dir``, created with the umask's permissions
    (tempfile.mkdtemp would make it 0700, unreadable for the other users of a shared machine)."""
    while True:
        candidate = out_dir.parent / f".{out_dir.name}.{tag}-{secrets.token_hex(4)}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue


@contextmanager
def staged_directory(out_dir: Path, *, overwrite: bool = False, sources: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield an empty staging directory beside ``out_dir``; on normal exit it takes
    ``out_dir``'s place; on any exception, or when Ctrl-C / SIGTERM was caught and swallowed by
    library code meanwhile, it is deleted and ``out_dir`` is left untouched.

    Raises OutputError before yielding when ``out_dir`` may not be written (see the module
    docstring), and again before the swap if it changed meanwhile.
    """
    out_dir = Path(out_dir)
    sources = list(sources)
    check_no_overlap(out_dir, sources)
    check_replaceable(out_dir, overwrite=overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_sibling(out_dir, "partial")
    try:
        yield staging
        raise_if_requested()
        check_replaceable(out_dir, overwrite=overwrite)
        _swap_into_place(staging, out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _swap_into_place(staging: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    if not any(out_dir.iterdir()):
        out_dir.rmdir()
        os.replace(staging, out_dir)
        return
    old = out_dir.parent / f".{out_dir.name}.old-{secrets.token_hex(4)}"
    os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
