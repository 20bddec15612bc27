"""Typed errors raised by samrt and samexport.

Every error raised for bad user input names the argument, the value received and what was
expected. All inherit from :class:`SamError`, so a service can catch one type.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "SamError",
    "InvalidInputError",
    "ConfigError",
    "CheckpointError",
    "ManifestError",
    "BackendUnavailableError",
    "InferenceError",
    "EngineCompatibilityError",
    "OutputError",
    "PerformanceWarning",
]


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class SamError(Exception):
    """Base class of every error samrt and samexport raise on purpose."""


class InvalidInputError(SamError, ValueError):
    """An argument had a value the function cannot use.

    Attributes:
        argument: name of the argument (e.g. ``"input_labels"``).
        value: the offending value (possibly summarised).
        expected: what would have been accepted, in words.
    """

    def __init__(self, argument: str, value: Any, expected: str) -> None:
        self.argument = argument
        self.value = value
        self.expected = expected
        super().__init__(f"invalid {argument}={_short_repr(value)}: expected {expected}")


class ConfigError(InvalidInputError):
    """A configuration field is invalid. ``argument`` is the dotted field name."""


class CheckpointError(SamError):
    """A checkpoint could not be loaded safely or does not fit the model.

    Attributes:
        path: the file or directory involved.
        missing_keys, unexpected_keys: parameter names, possibly empty.
        shape_mismatches: ``(name, expected_shape, found_shape)`` triples.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        missing_keys: list[str] | None = None,
        unexpected_keys: list[str] | None = None,
        shape_mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]] | None = None,
    ) -> None:
        self.path = path
        self.missing_keys = list(missing_keys or [])
        self.unexpected_keys = list(unexpected_keys or [])
        self.shape_mismatches = list(shape_mismatches or [])
        parts = [message if path is None else f"{path}: {message}"]
        if self.missing_keys:
            parts.append(f"missing keys ({len(self.missing_keys)}): {_preview(self.missing_keys)}")
        if self.unexpected_keys:
            parts.append(
                f"unexpected keys ({len(self.unexpected_keys)}): {_preview(self.unexpected_keys)}"
            )
        if self.shape_mismatches:
            rows = [f"{n} expected {tuple(e)} found {tuple(f)}" for n, e, f in self.shape_mismatches]
            parts.append(f"shape mismatches ({len(rows)}): {_preview(rows)}")
        super().__init__("; ".join(parts))


def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, ... (+{len(items) - limit} more)"


class ManifestError(SamError):
    """An engine directory is incomplete, edited or incompatible. ``path`` names the file."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(message if path is None else f"{path}: {message}")


class EngineCompatibilityError(ManifestError):
    """A TensorRT engine was built for another TensorRT version or GPU architecture; the message
    names both sides and the command that rebuilds it. Raised before deserializing anything."""


class OutputError(SamError):
    """An output path cannot be used as asked: it holds files that are not an engine directory,
    it is an engine directory and replacing it was not asked for (``--overwrite``), or it
    overlaps an input. Nothing was written or removed. ``path`` names the output."""

    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class BackendUnavailableError(SamError):
    """A requested backend (onnxruntime, tensorrt, a GPU) cannot be used on this machine."""


class InferenceError(SamError):
    """A backend failed while running a graph (the runtime stays usable for the next call).

    Attributes:
        graph: "encoder" or "decoder" (or the graph file name).
    """

    def __init__(self, message: str, *, graph: str) -> None:
        self.graph = graph
        super().__init__(f"{graph}: {message}")


class PerformanceWarning(UserWarning):
    """The runtime works but will be slower than it should here, e.g. an int8 engine on a CPU
    without int8 dot-product instructions (see :mod:`samrt.cpu`). A warning, not an error:
    filter it with ``warnings.simplefilter("ignore", PerformanceWarning)``."""
