"""The manifest's ``tensorrt`` record, typed: what ``samexport build --target tensorrt`` wrote
about the plans and the machine that built them (read by :mod:`.compat` and the loader)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...records import Record
from .profiles import Profile, profiles_from_dict, profiles_to_dict

__all__ = ["TensorRTRecord"]


@dataclass(frozen=True, kw_only=True)
class TensorRTRecord(Record):
    """TensorRT plans built on one machine: the TensorRT ``version``, the ``gpu`` and its
    ``compute_capability`` ("major.minor") that must match where they run, the plans' file per
    graph (``engines``) and their optimisation ``profiles`` per graph."""

    version: str
    gpu: str
    compute_capability: str
    engines: dict[str, str]
    profiles: dict[str, tuple[Profile, ...]]
    precision: str = "fp16"
    strongly_typed: bool | None = None
    workspace_mb: int | None = None
    timing_cache: str | None = None
    build_seconds: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _NULLABLE: ClassVar[frozenset[str]] = frozenset({"workspace_mb"})
    SECTION: ClassVar[str] = "tensorrt"
    REQUIRED: ClassVar[tuple[str, ...]] = ("version", "gpu", "compute_capability", "engines", "profiles")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorRTRecord:
        known, extra = cls._split(data)
        known["profiles"] = {graph: tuple(profiles_from_dict(p)) for graph, p in known["profiles"].items()}
        known["compute_capability"] = str(known["compute_capability"])
        known["version"] = str(known["version"])
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return self._plain({"profiles": lambda p: {graph: profiles_to_dict(list(v)) for graph, v in p.items()}})


