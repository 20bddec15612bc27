"""TensorRT optimisation profiles as data: the shape ranges an engine accepts, and which profile
serves a call. Written by ``samexport build`` into the manifest (``tensorrt.profiles``), read
here by the TensorRT runner. Pure Python; no TensorRT needed.

A profile maps each graph input to a :class:`ShapeRange` (min, opt, max shapes, all of the same
rank). A call is served by the first profile whose ranges contain every input's shape; a call
whose leading (batch / prompt) axis passes every profile's max is split along that axis by the
runner (the graphs treat those rows independently).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ...errors import InvalidInputError

__all__ = ["ShapeRange", "Profile", "select_profile", "profiles_to_dict", "profiles_from_dict", "max_leading"]


@dataclass(frozen=True, kw_only=True)
class ShapeRange:
    """min <= opt <= max, per axis; TensorRT tunes its kernels for ``opt``."""

    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def __post_init__(self) -> None:
        ranks = {len(self.min), len(self.opt), len(self.max)}
        if len(ranks) != 1:
            raise InvalidInputError("ShapeRange", (self.min, self.opt, self.max), "min, opt and max of one rank")
        for lo, mid, hi in zip(self.min, self.opt, self.max, strict=True):
            if not 1 <= lo <= mid <= hi:
                raise InvalidInputError("ShapeRange", (self.min, self.opt, self.max),
                                        "1 <= min <= opt <= max on every axis")

    def contains(self, shape: Sequence[int]) -> bool:
        return len(shape) == len(self.min) and all(
            lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max, strict=True))

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[int]]) -> ShapeRange:
        return cls(min=tuple(data["min"]), opt=tuple(data["opt"]), max=tuple(data["max"]))


Profile = dict[str, ShapeRange]


def select_profile(profiles: Sequence[Profile], shapes: Mapping[str, Sequence[int]]) -> int | None:
    """Index of the first profile containing every shape in ``shapes`` (None if none does)."""
    for index, profile in enumerate(profiles):
        if all(name in profile and profile[name].contains(shape) for name, shape in shapes.items()):
            return index
    return None


def max_leading(profiles: Sequence[Profile], name: str) -> int:
    """The largest leading-axis size any profile accepts for input ``name``."""
    return max(profile[name].max[0] for profile in profiles)


def profiles_to_dict(profiles: Sequence[Profile]) -> list[dict[str, dict[str, list[int]]]]:
    return [{name: r.to_dict() for name, r in profile.items()} for profile in profiles]


def profiles_from_dict(data: Sequence[Mapping[str, Mapping[str, Sequence[int]]]]) -> list[Profile]:
    return [{name: ShapeRange.from_dict(r) for name, r in profile.items()} for profile in data]
