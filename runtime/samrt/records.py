"""The base of the manifest's typed sections: from a dict and back, unknown keys kept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any, ClassVar

from .errors import ManifestError

__all__ = ["Record"]


class Record:
    """from_dict / to_dict shared by the manifest sections (frozen dataclasses): a dataclass field per manifest key (``from``
    is ``source_dir``, Python keeps ``from``), unknown keys kept in ``extra``."""

    _KEYS: ClassVar[dict[str, str]] = {}  # field name -> manifest key where they differ
    SECTION: ClassVar[str] = "manifest"  # the section's key, for errors
    REQUIRED: ClassVar[tuple[str, ...]] = ()  # keys a section must have (ManifestError otherwise)
    _NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def _key(cls, name: str) -> str:
        return cls._KEYS.get(name, name)

    @classmethod
    def _split(cls, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(known fields by field name, the other keys); ManifestError when a REQUIRED key is missing."""
        missing = [key for key in cls.REQUIRED if key not in data]
        if missing:
            raise ManifestError(f"the {cls.SECTION} record lacks {missing}")
        names = {cls._key(f.name): f.name for f in fields(cls) if f.name != "extra"}  # type: ignore[arg-type]
        known = {names[key]: value for key, value in data.items() if key in names}
        extra = {key: value for key, value in data.items() if key not in names}
        return known, extra

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        """The section of ``data`` (a section converting a field overrides this)."""
        known, extra = cls._split(data)
        return cls(**known, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return self._plain()

    def _plain(self, convert: Mapping[str, Callable[[Any], Any]] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and f.name not in self._NULLABLE:
                continue
            if convert and f.name in convert and value is not None:
                value = convert[f.name](value)
            out[self._key(f.name)] = value
        out.update(getattr(self, "extra", {}))
        return out


