"""Where a model comes from: the ``--model`` / ``--reference`` grammar (``random:NAME``,
``random:NAME-stress``, an HF directory, a Meta ``.pth`` file) and the reference of an engine."""

from __future__ import annotations

from samrt.engine_manifest import ModelSource
from samrt.errors import CheckpointError

from ..config import preset
from ..modeling.sam import SamModel
from .files import sha256_of
from .random_weights import random_model
from .stress import init_stress_weights, split_stress_name

__all__ = ["load_source", "reference_for_engine"]


def load_source(source: str) -> tuple[SamModel, str | None]:
    """``random:NAME`` (seeded random weights, seed 0; smoke tests and benchmarks only;
    ``random:NAME-stress`` adds FP16-hostile outliers, see :mod:`samexport.checkpoints.stress`), an HF
    directory or a Meta .pth file -> (SamModel, sha256 of the source file or directory, or None)."""
    if source.startswith("random:"):
        name, stress = split_stress_name(source.split(":", 1)[1])
        return random_model(preset(name), seed=0, init=init_stress_weights if stress else None), None
    return SamModel.from_pretrained(source), sha256_of(source)


def reference_for_engine(exported_from: ModelSource, source: str | None = None) -> SamModel:
    """The PyTorch model an engine was exported from (``exported_from``: its manifest's
    ``model``): ``source`` if given, else ``exported_from.source``. A checkpoint whose sha256 differs from the one the manifest recorded is
    refused (CheckpointError), since comparing against other weights proves nothing."""
    chosen = source or exported_from.source
    model, digest = load_source(chosen)
    expected = exported_from.sha256
    if expected and digest and digest != expected:
        raise CheckpointError(
            f"has sha256 {digest[:16]}..., but the engine was exported from "
            f"{exported_from.source!r} with sha256 {expected[:16]}...; pass the same checkpoint",
            path=chosen,
        )
    return model
