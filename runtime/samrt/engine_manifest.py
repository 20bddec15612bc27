"""``EngineManifest``: the engine directory's ``manifest.json`` as typed, frozen dataclasses.

:func:`samrt.manifest.load_manifest` verifies a file (schema version, every field's type and
bounds, the artefacts' sizes and hashes) and returns its dict; :meth:`EngineManifest.from_dict`
turns that dict into this typed form, and :meth:`EngineManifest.to_dict` writes it back. Every
reader (``SamRuntime``, ``samexport build`` / ``inspect`` / ``report``) and every writer
(``samexport export`` / ``build``) goes through these classes, so each default is written once,
here.

Reading old files: every manifest samexport has written carries ``schema_version`` 1; fields
added since are optional and take the defaults below (``precision`` "fp32"; an int8 build without
``int8_terms`` counts as two terms, as it was built). A future schema version adds a migration
to :data:`MIGRATIONS`: a function from the older dict to the next version's.

Serialising: a field that is None is left out of the file, except the fields in a section's
``_NULLABLE`` (written as null, as samexport always has). Keys this release does not know are
kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import spec
from .backends.openvino_record import OpenVINORecord
from .backends.tensorrt.record import TensorRTRecord
from .errors import InvalidInputError, ManifestError
from .records import Record

__all__ = [
    "EngineManifest", "ModelSource", "Preprocessing", "GraphRecord", "Artifact", "BuildRecord",
    "TensorRTRecord", "PrecisionPolicyRecord", "AccuracySummary", "MIGRATIONS", "DEFAULT_PRECISION",
]

DEFAULT_PRECISION = "fp32"
DEFAULT_INT8_TERMS = 2  # int8 engines built before the manifest recorded the count had two terms
# schema version -> function turning a manifest of that version into one of the next version
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


@dataclass(frozen=True, kw_only=True)
class ModelSource(Record):
    """Where the weights came from: ``source`` (a path or ``random:NAME``), the checkpoint's
    ``sha256`` (None for random weights) and the SamConfig dict."""

    source: str
    sha256: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    _NULLABLE: ClassVar[frozenset[str]] = frozenset({"sha256"})


@dataclass(frozen=True, kw_only=True)
class Preprocessing(Record):
    """The processor's constants: resize target and pad side ``image_size``, low-res mask side
    ``mask_size``, per-channel ``image_mean`` / ``image_std`` on [0, 1] pixels, ``rescale_factor``."""

    image_size: int = spec.IMAGE_SIZE
    mask_size: int = spec.MASK_SIZE
    image_mean: tuple[float, float, float] = spec.IMAGE_MEAN
    image_std: tuple[float, float, float] = spec.IMAGE_STD
    rescale_factor: float = spec.RESCALE_FACTOR
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Preprocessing:
        known, extra = cls._split(data)
        for key in ("image_mean", "image_std"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return self._plain({"image_mean": list, "image_std": list})


def _spec_from_dict(data: Mapping[str, Any]) -> spec.TensorSpec:
    return spec.TensorSpec(data["name"], data["dtype"], tuple(data["shape"]))


def _spec_to_dict(tensor: spec.TensorSpec) -> dict[str, Any]:
    return {"name": tensor.name, "dtype": tensor.dtype, "shape": list(tensor.shape)}


@dataclass(frozen=True, kw_only=True)
class GraphRecord(Record):
    """One ONNX graph: its ``file`` in the directory, ONNX ``opset``, and its inputs and outputs
    as exported (symbolic axes as names; see ``samrt.spec``)."""

    file: str
    opset: int
    inputs: tuple[spec.TensorSpec, ...]
    outputs: tuple[spec.TensorSpec, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GraphRecord:
        known, extra = cls._split(data)
        for side in ("inputs", "outputs"):
            known[side] = tuple(_spec_from_dict(t) for t in known[side])
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        specs = lambda tensors: [_spec_to_dict(t) for t in tensors]  # noqa: E731
        return self._plain({"inputs": specs, "outputs": specs})


@dataclass(frozen=True, kw_only=True)
class Artifact(Record):
    """A file the manifest vouches for: its sha256 and size in bytes."""

    sha256: str
    bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BuildRecord(Record):
    """How ``samexport build`` made this directory: ``target`` backend, ``precision``, the fp32
    directory it started from (``source_dir``, the key ``from``) and that manifest's sha256, the
    ``method`` in words, wall ``seconds`` (None while the build runs), and for int8 the terms per
    weight and per activation."""

    target: str | None = None
    precision: str | None = None
    source_dir: str | None = None
    from_manifest_sha256: str | None = None
    method: str | None = None
    seconds: float | None = None
    int8_terms: int | None = None
    int8_activation_terms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _KEYS: ClassVar[dict[str, str]] = {"source_dir": "from"}
    _NULLABLE: ClassVar[frozenset[str]] = frozenset({"seconds"})


@dataclass(frozen=True, kw_only=True)
class PrecisionPolicyRecord(Record):
    """The FP16 precision policy a build used: its ``name``, a ``note``, and FP32 nodes per graph."""

    name: str
    note: str | None = None
    fp32_nodes: dict[str, int] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class AccuracySummary(Record):
    """The build's closing accuracy check against the fp32 reference: ``passed``, the number of
    ``prompts``, mask IoU statistics (``mean``, and ``min`` / ``p5`` where recorded), the lowest
    embedding cosine, and the failed checks in words."""

    passed: bool
    prompts: int
    mask_iou: dict[str, float]
    embeddings_cosine_min: float | None = None
    failed: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccuracySummary:
        known, extra = cls._split(data)
        known["failed"] = tuple(known.get("failed", ()))
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return self._plain({"failed": list})


@dataclass(frozen=True, kw_only=True)
class EngineManifest(Record):
    """Everything an engine directory says about itself (see the module docstring)."""

    name: str
    model: ModelSource
    preprocessing: Preprocessing
    graphs: dict[str, GraphRecord]
    artifacts: dict[str, Artifact]
    schema_version: int = spec.MANIFEST_SCHEMA_VERSION
    created: str | None = None
    samexport_version: str | None = None
    precision: str = DEFAULT_PRECISION
    versions: dict[str, str | None] = field(default_factory=dict)
    verification: dict[str, Any] | None = None
    build: BuildRecord | None = None
    tensorrt: TensorRTRecord | None = None
    openvino: OpenVINORecord | None = None
    precision_policy: PrecisionPolicyRecord | None = None
    emulation: bool | None = None
    accuracy: AccuracySummary | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _SECTIONS: ClassVar[dict[str, Any]] = {
        "model": ModelSource, "preprocessing": Preprocessing, "build": BuildRecord, "tensorrt": TensorRTRecord, "openvino": OpenVINORecord,
        "precision_policy": PrecisionPolicyRecord, "accuracy": AccuracySummary,
    }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str | None = None) -> EngineManifest:
        """The typed manifest of a dict :func:`samrt.manifest.load_manifest` has checked (older
        schema versions migrated first); ManifestError naming ``path`` if a section is unusable."""
        data = dict(data)
        version = data.get("schema_version", spec.MANIFEST_SCHEMA_VERSION)
        while version in MIGRATIONS:
            data = MIGRATIONS[version](data)
            version = data["schema_version"]
        known, extra = cls._split(data)
        try:
            for key, section in cls._SECTIONS.items():
                if known.get(key) is not None:
                    known[key] = section.from_dict(known[key])
            known["graphs"] = {g: GraphRecord.from_dict(r) for g, r in known["graphs"].items()}
            known["artifacts"] = {n: Artifact.from_dict(r) for n, r in known["artifacts"].items()}
        except ManifestError as exc:
            if exc.path is not None or path is None:
                raise
            raise ManifestError(str(exc), path=path) from exc
        except (InvalidInputError, KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"unusable manifest section ({type(exc).__name__}: {exc})", path=path) from exc
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        sections = {key: (lambda s: s.to_dict()) for key in self._SECTIONS}
        return self._plain({
            **sections,
            "graphs": lambda graphs: {g: r.to_dict() for g, r in graphs.items()},
            "artifacts": lambda artifacts: {n: a.to_dict() for n, a in artifacts.items()},
        })

    # -- what readers ask -----------------------------------------------------------------------
    def graph_files(self) -> dict[str, str]:
        """graph ("encoder", "decoder") -> its ONNX file name."""
        return {graph: record.file for graph, record in self.graphs.items()}

    @property
    def int8_terms(self) -> int | None:
        """int8 terms per weight of an int8 engine (None for other precisions)."""
        if self.precision != "int8":
            return None
        if self.build is None or self.build.int8_terms is None:
            return DEFAULT_INT8_TERMS
        return self.build.int8_terms
