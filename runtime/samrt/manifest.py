"""The engine-directory manifest: schema, writing, and verification before anything loads.

``manifest.json`` (schema version ``spec.MANIFEST_SCHEMA_VERSION``)::

    {"schema_version": 1, "name": ..., "created": ISO time, "samexport_version": ...,
     "model": {"source": ..., "sha256": ..., "config": {...}},
     "preprocessing": {"image_size", "mask_size", "image_mean", "image_std", "rescale_factor"},
     "graphs": {"encoder": {"file", "inputs", "outputs", "opset"}, "decoder": {...}},
     "precision": "fp32", "versions": {"torch", "onnx", "onnxruntime", ...},
     "artifacts": {"encoder.onnx": {"sha256", "bytes"}, ...},
     "verification": {...}}

:func:`load_manifest` checks the schema version, that every artefact lies inside the
directory, exists, and has the recorded size and sha256, and raises :class:`ManifestError`
naming the file otherwise — before any graph or engine is deserialised.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from . import spec
from .errors import ManifestError

__all__ = ["sha256_file", "artifact_record", "load_manifest", "write_manifest"]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def artifact_record(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    manifest = dict(manifest)
    manifest["schema_version"] = spec.MANIFEST_SCHEMA_VERSION
    path = directory / spec.MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def _inside(directory: Path, name: str) -> Path:
    root = directory.resolve()
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise ManifestError(f"artefact {name!r} points outside the engine directory", path=str(directory / name))
    return target


def load_manifest(directory: str | Path, *, verify_hashes: bool = True) -> dict[str, Any]:
    """Read and verify ``directory/manifest.json``. Returns the manifest dict."""
    directory = Path(directory)
    path = directory / spec.MANIFEST_NAME
    if not directory.is_dir():
        raise ManifestError("engine directory not found", path=str(directory))
    if not path.is_file():
        raise ManifestError("missing manifest.json (not an engine directory, or an interrupted export)",
                            path=str(path))
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"unreadable manifest ({exc})", path=str(path)) from exc
    if not isinstance(manifest, dict):
        raise ManifestError("manifest is not a JSON object", path=str(path))
    version = manifest.get("schema_version")
    if version != spec.MANIFEST_SCHEMA_VERSION:
        raise ManifestError(
            f"unknown schema_version {version!r}; this samrt reads version {spec.MANIFEST_SCHEMA_VERSION} "
            "(re-export the model with a matching samexport)", path=str(path),
        )
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, dict) or not artifacts:
        raise ManifestError("manifest lists no artifacts", path=str(path))
    for name, record in artifacts.items():
        target = _inside(directory, name)
        if not target.is_file():
            raise ManifestError("artefact listed in the manifest is missing", path=str(directory / name))
        if not isinstance(record, dict):
            raise ManifestError("malformed artefact record", path=str(directory / name))
        size = target.stat().st_size
        if record.get("bytes") != size:
            raise ManifestError(
                f"size {size} bytes, the manifest says {record.get('bytes')} (truncated or edited)",
                path=str(directory / name),
            )
        if verify_hashes and sha256_file(target) != record.get("sha256"):
            raise ManifestError("sha256 does not match the manifest (corrupt or edited)", path=str(directory / name))
    for graph in ("encoder", "decoder"):
        file = manifest.get("graphs", {}).get(graph, {}).get("file")
        if file not in artifacts:
            raise ManifestError(f"the {graph} graph is not among the verified artifacts", path=str(path))
    return manifest
