"""The manifest's ``openvino`` record, typed: the OpenVINO IR models ``samexport build --target
openvino`` wrote and the precision they are compiled at."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..records import Record

__all__ = ["OpenVINORecord"]


@dataclass(frozen=True, kw_only=True)
class OpenVINORecord(Record):
    """``version``: the OpenVINO that wrote the IR; ``precision``: what the runner compiles them at
    ("fp32" or "bf16"); ``models``: the IR ``.xml`` file per graph (each with its ``.bin``
    beside it); ``cpu_capabilities``: what the building CPU offered (OpenVINO's names)."""

    version: str
    precision: str
    models: dict[str, str]
    cpu_capabilities: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    SECTION: ClassVar[str] = "openvino"
    REQUIRED: ClassVar[tuple[str, ...]] = ("version", "precision", "models")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OpenVINORecord:
        known, extra = cls._split(data)
        known["cpu_capabilities"] = tuple(known.get("cpu_capabilities", ()))
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return self._plain({"cpu_capabilities": list})
