"""The engine-directory manifest: schema, writing, and verification before anything loads.

``manifest.json``: the fields and their meaning are :class:`samrt.engine_manifest.EngineManifest`'s.

:func:`load_manifest` checks the schema version, every field's type and bounds
(:mod:`samrt.manifest_checks`), that every artefact lies inside the
directory, exists, and has the recorded size and sha256, and raises :class:`ManifestError`
naming the file otherwise — before any graph or engine is deserialised.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from . import spec
from .engine_manifest import Artifact, EngineManifest
from .errors import ManifestError
from .manifest_checks import check_structure

__all__ = ["sha256_file", "artifact_record", "load_manifest", "read_manifest", "write_manifest"]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def artifact_record(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def artifacts_of(directory: Path) -> dict[str, Artifact]:
    """An :class:`~samrt.engine_manifest.Artifact` for every file directly in ``directory``
    except the manifest, by name."""
    return {p.name: Artifact.from_dict(artifact_record(p)) for p in sorted(directory.iterdir())
            if p.is_file() and p.name != spec.MANIFEST_NAME}


def write_manifest(directory: Path, manifest: EngineManifest | dict[str, Any]) -> Path:
    """Write ``manifest`` (typed, or a dict of the same schema) as ``directory/manifest.json``,
    stamped with this release's schema version."""
    manifest = manifest.to_dict() if isinstance(manifest, EngineManifest) else dict(manifest)
    manifest["schema_version"] = spec.MANIFEST_SCHEMA_VERSION
    path = directory / spec.MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def _inside(directory: Path, name: str) -> Path:
    try:
        root = directory.resolve()
        target = (root / name).resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # a symlink loop, an unreadable directory
        raise ManifestError(f"artefact {name!r} cannot be resolved ({exc})", path=str(directory)) from exc
    if target != root and root not in target.parents:
        raise ManifestError(f"artefact {name!r} points outside the engine directory", path=str(directory / name))
    return target


def read_manifest(directory: str | Path, *, verify_hashes: bool = True) -> EngineManifest:
    """Read and verify ``directory/manifest.json`` (:func:`load_manifest`); the typed manifest."""
    directory = Path(directory)
    return EngineManifest.from_dict(load_manifest(directory, verify_hashes=verify_hashes),
                                    path=str(directory / spec.MANIFEST_NAME))


def load_manifest(directory: str | Path, *, verify_hashes: bool = True) -> dict[str, Any]:
    """Read and verify ``directory/manifest.json``. Returns the manifest as a plain dict (for
    tools that edit it); :func:`read_manifest` gives the typed form."""
    directory = Path(directory)
    path = directory / spec.MANIFEST_NAME
    if not directory.is_dir():
        raise ManifestError("engine directory not found", path=str(directory))
    if not path.is_file():
        try:
            path.stat()
        except PermissionError as exc:
            raise ManifestError(f"cannot read the engine directory ({exc.strerror})", path=str(directory)) from exc
        except OSError:
            pass
        raise ManifestError("missing manifest.json (not an engine directory, or an interrupted export)",
                            path=str(path))
    try:
        manifest = json.loads(path.read_text())
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest ({exc.strerror or exc})", path=str(path)) from exc
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ManifestError(f"unreadable manifest ({reason})", path=str(path)) from exc
    if not isinstance(manifest, dict):
        raise ManifestError("manifest is not a JSON object", path=str(path))
    version = manifest.get("schema_version")
    if version != spec.MANIFEST_SCHEMA_VERSION:
        raise ManifestError(
            f"unknown schema_version {version!r}; this samrt reads version {spec.MANIFEST_SCHEMA_VERSION} "
            "(re-export the model with a matching samexport)", path=str(path),
        )
    check_structure(manifest, str(path), check_artefact_name=lambda name: _inside(directory, name))
    for name, record in manifest["artifacts"].items():
        target = _inside(directory, name)
        try:
            if not target.is_file():
                raise ManifestError("artefact listed in the manifest is missing", path=str(directory / name))
            size = target.stat().st_size
            if record["bytes"] != size:
                raise ManifestError(f"size {size} bytes, the manifest says {record['bytes']} (truncated or edited)",
                                    path=str(directory / name))
            if verify_hashes and sha256_file(target) != record["sha256"]:
                raise ManifestError("sha256 does not match the manifest (corrupt or edited)",
                                    path=str(directory / name))
        except OSError as exc:  # e.g. no read permission for this user
            raise ManifestError(f"cannot read the artefact ({exc.strerror or exc})", path=str(directory / name)) from exc
    return manifest
