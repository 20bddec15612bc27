"""The structure of ``manifest.json``, checked field by field before anything reads it.

:func:`check_structure` raises :class:`ManifestError` naming the file and the dotted field
(``preprocessing.image_size``, ``graphs.decoder.inputs[2].shape``) with what was found and what
was expected, so no reader of a manifest meets a ``KeyError``, a ``TypeError`` or a size that
would allocate without bound. Optional sections (``build``, ``tensorrt``, ``precision_policy``,
``emulation``, ``accuracy``, ``versions``, ``verification``) are checked where present.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from . import spec
from .errors import ManifestError

__all__ = ["check_structure", "PRECISIONS", "MAX_IMAGE_SIZE", "MAX_MASK_SIZE"]

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
MAX_IMAGE_SIZE = 8192  # the padded square side; SAM uses 1024
MAX_MASK_SIZE = 2048  # the low-res mask side; SAM uses 256
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_NAME = 255


class _Fields:
    """Typed reads of one manifest, raising ManifestError(path=file) that names the field."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, field: str, found: Any, expected: str) -> None:
        shown = repr(found)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise ManifestError(f"field {field} is {shown}: expected {expected}", path=self.path)

    def present(self, parent: dict[str, Any], key: str, field: str, optional: bool) -> bool:
        """Whether ``key`` is in ``parent``; a missing required field raises ManifestError."""
        if key in parent:
            return True
        if optional:
            return False
        raise ManifestError(f"field {field} is missing", path=self.path)

    def obj(self, parent: dict[str, Any], key: str, field: str, *, optional: bool = False) -> dict[str, Any] | None:
        if not self.present(parent, key, field, optional):
            return None
        value = parent[key]
        if not isinstance(value, dict):
            self.fail(field, value, "a JSON object")
        return value

    def text(self, parent: dict[str, Any], key: str, field: str, *, optional: bool = False,
             choices: tuple[str, ...] | None = None, allow_null: bool = False) -> str | None:
        if not self.present(parent, key, field, optional):
            return None
        value = parent[key]
        if value is None and allow_null:
            return None
        if not isinstance(value, str) or "\x00" in value:
            self.fail(field, value, "a string" + (" or null" if allow_null else ""))
        if choices is not None and value not in choices:
            self.fail(field, value, f"one of {list(choices)}")
        return value

    def integer(self, parent: dict[str, Any], key: str, field: str, low: int, high: int, *,
                optional: bool = False) -> int | None:
        if not self.present(parent, key, field, optional):
            return None
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(field, value, f"an integer from {low} to {high}")
        return value

    def number(self, parent: dict[str, Any], key: str, field: str, *, positive: bool = False,
               optional: bool = False, allow_null: bool = False) -> float | None:
        if not self.present(parent, key, field, optional):
            return None
        value = parent[key]
        if value is None and allow_null:
            return None
        return self.finite(value, field, positive=positive)

    def finite(self, value: Any, field: str, *, positive: bool = False) -> float:
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or (positive and value <= 0)):
            self.fail(field, value, "a finite number" + (" > 0" if positive else ""))
        return float(value)

    def flag(self, parent: dict[str, Any], key: str, field: str, *, optional: bool = False) -> bool | None:
        if not self.present(parent, key, field, optional):
            return None
        if not isinstance(parent[key], bool):
            self.fail(field, parent[key], "true or false")
        return parent[key]

    def items(self, parent: dict[str, Any], key: str, field: str, *, low: int = 0, high: int = 64) -> list[Any]:
        self.present(parent, key, field, False)
        value = parent[key]
        if not isinstance(value, list) or not low <= len(value) <= high:
            self.fail(field, value, f"a list of {low} to {high} entries")
        return value


def check_structure(manifest: dict[str, Any], path: str,
                    check_artefact_name: Callable[[str], Any] | None = None) -> None:
    """Raise ManifestError (naming ``path`` and the field) unless ``manifest`` has every field
    samrt and samexport read, of the right type and within bounds. ``check_artefact_name`` is
    called with each artefact's name before its record is checked (the loader refuses names that
    point outside the engine directory there, the more telling error)."""
    f = _Fields(path)
    f.text(manifest, "name", "name")
    model = f.obj(manifest, "model", "model")
    f.text(model, "source", "model.source")
    sha = f.text(model, "sha256", "model.sha256", optional=True, allow_null=True)
    if sha is not None and not _SHA256.fullmatch(sha):
        f.fail("model.sha256", sha, "64 lowercase hex digits or null")
    f.obj(model, "config", "model.config", optional=True)
    _check_preprocessing(f, f.obj(manifest, "preprocessing", "preprocessing"))
    artifacts = f.obj(manifest, "artifacts", "artifacts")
    if not artifacts:
        raise ManifestError("manifest lists no artifacts", path=path)
    for name, record in artifacts.items():
        field = f"artifacts[{name!r}]"
        if not name or "\x00" in name or len(name) > _MAX_NAME:
            f.fail("artifacts", name, f"file names of 1 to {_MAX_NAME} characters without NUL bytes")
        if check_artefact_name is not None:
            check_artefact_name(name)
        if not isinstance(record, dict):
            f.fail(field, record, "an object with sha256 and bytes")
        f.integer(record, "bytes", f"{field}.bytes", 0, 1 << 50)
        if not _SHA256.fullmatch(str(f.text(record, "sha256", f"{field}.sha256"))):
            f.fail(f"{field}.sha256", record["sha256"], "64 lowercase hex digits")
    graphs = f.obj(manifest, "graphs", "graphs")
    for graph in ("encoder", "decoder"):
        _check_graph(f, f.obj(graphs, graph, f"graphs.{graph}"), graph, artifacts)
    f.text(manifest, "precision", "precision", optional=True, choices=PRECISIONS)
    f.flag(manifest, "emulation", "emulation", optional=True)
    versions = f.obj(manifest, "versions", "versions", optional=True)
    for key in versions or {}:
        f.text(versions, key, f"versions.{key}", allow_null=True)
    f.obj(manifest, "verification", "verification", optional=True)
    _check_build(f, f.obj(manifest, "build", "build", optional=True))
    _check_policy(f, f.obj(manifest, "precision_policy", "precision_policy", optional=True))
    _check_accuracy(f, f.obj(manifest, "accuracy", "accuracy", optional=True))
    f.obj(manifest, "openvino", "openvino", optional=True)  # its fields: samrt.backends.openvino_record
    f.obj(manifest, "tensorrt", "tensorrt", optional=True)  # its fields: samrt.backends.tensorrt.compat.read_tensorrt_record


def _check_preprocessing(f: _Fields, pre: dict[str, Any]) -> None:
    size = f.integer(pre, "image_size", "preprocessing.image_size", 16, MAX_IMAGE_SIZE)
    f.integer(pre, "mask_size", "preprocessing.mask_size", 4, min(MAX_MASK_SIZE, size))
    for key in ("image_mean", "image_std"):
        values = f.items(pre, key, f"preprocessing.{key}", low=3, high=3)
        for i, value in enumerate(values):
            f.finite(value, f"preprocessing.{key}[{i}]", positive=key == "image_std")
    f.number(pre, "rescale_factor", "preprocessing.rescale_factor", positive=True)


def _check_graph(f: _Fields, entry: dict[str, Any], graph: str, artifacts: dict[str, Any]) -> None:
    prefix = f"graphs.{graph}"
    file = f.text(entry, "file", f"{prefix}.file")
    if file not in artifacts:
        raise ManifestError(f"the {graph} graph ({file!r}) is not among the verified artifacts", path=f.path)
    f.integer(entry, "opset", f"{prefix}.opset", 1, 1000)
    for side, expected in zip(("inputs", "outputs"), spec.graph_contract(graph), strict=True):
        tensors = f.items(entry, side, f"{prefix}.{side}", low=1, high=16)
        names = []
        for i, tensor in enumerate(tensors):
            field = f"{prefix}.{side}[{i}]"
            if not isinstance(tensor, dict):
                f.fail(field, tensor, "an object with name, dtype and shape")
            names.append(f.text(tensor, "name", f"{field}.name"))
            f.text(tensor, "dtype", f"{field}.dtype")
            shape = f.items(tensor, "shape", f"{field}.shape", high=8)
            for axis in shape:
                if not ((isinstance(axis, int) and not isinstance(axis, bool) and 0 < axis <= 1 << 20)
                        or (isinstance(axis, str) and 0 < len(axis) <= 64)):
                    f.fail(f"{field}.shape", shape, "axes that are positive integers or symbolic names")
        if names != [t.name for t in expected]:
            f.fail(f"{prefix}.{side}", names, f"the {graph} graph's {side} {[t.name for t in expected]}")


def _check_build(f: _Fields, build: dict[str, Any] | None) -> None:
    if build is None:
        return
    f.text(build, "target", "build.target", optional=True)
    f.text(build, "precision", "build.precision", optional=True, choices=PRECISIONS)
    f.text(build, "from", "build.from", optional=True)
    f.text(build, "method", "build.method", optional=True)
    f.number(build, "seconds", "build.seconds", optional=True, allow_null=True)
    f.integer(build, "int8_terms", "build.int8_terms", 1, 2, optional=True)
    f.integer(build, "int8_activation_terms", "build.int8_activation_terms", 1, 2, optional=True)


def _check_policy(f: _Fields, policy: dict[str, Any] | None) -> None:
    if policy is None:
        return
    f.text(policy, "name", "precision_policy.name")
    f.text(policy, "note", "precision_policy.note", optional=True)
    f.obj(policy, "fp32_nodes", "precision_policy.fp32_nodes", optional=True)


def _check_accuracy(f: _Fields, accuracy: dict[str, Any] | None) -> None:
    if accuracy is None:
        return
    f.flag(accuracy, "passed", "accuracy.passed")
    f.integer(accuracy, "prompts", "accuracy.prompts", 0, 1 << 40)
    f.number(accuracy, "embeddings_cosine_min", "accuracy.embeddings_cosine_min", optional=True)
    iou = f.obj(accuracy, "mask_iou", "accuracy.mask_iou")
    for key in ("mean", "min", "p5"):
        f.number(iou, key, f"accuracy.mask_iou.{key}", optional=key != "mean")
    failed = accuracy.get("failed", [])
    if not isinstance(failed, list) or not all(isinstance(line, str) for line in failed):
        f.fail("accuracy.failed", failed, "a list of strings")
