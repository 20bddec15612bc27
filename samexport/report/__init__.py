"""``samexport report``: prove an engine gives the reference model's answers, or show where not.

``run_report`` runs the same images and deterministic prompts (``prompts``) through the fp32
PyTorch reference and each backend (``compare``), measures the differences (``metrics``),
checks them against thresholds (``thresholds``, ``checks``) and writes report.json / report.md
/ report.html with overlays of the worst cases (``render``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from samrt import SamRuntime
from samrt.engine_manifest import EngineManifest
from samrt.errors import BackendUnavailableError, InvalidInputError
from samrt.images import to_rgb_uint8
from samrt.manifest import read_manifest

from ..timing import describe_machine
from ..torch_runner import reference_runtime
from .checks import evaluate
from .compare import CompareSettings, compare_backend
from .thresholds import thresholds_for

SCHEMA_VERSION = 1
BACKENDS = ("onnxruntime", "tensorrt", "openvino")  # openvino: on request (--backends), the ONNX graphs at fp32
SAMPLE_IMAGES = ("astronaut", "coffee", "chelsea")

__all__ = ["run_report", "sample_images", "load_images", "available_backends", "SCHEMA_VERSION"]


def sample_images(names: Sequence[str] = SAMPLE_IMAGES) -> list[tuple[str, np.ndarray]]:
    """Real photographs shipped inside scikit-image (no download)."""
    try:
        from skimage import data
    except ImportError as exc:
        raise InvalidInputError("--images", None, "image files, or scikit-image installed for the default "
                                "photographs") from exc
    return [(name, np.ascontiguousarray(getattr(data, name)()[..., :3])) for name in names]


def load_images(paths: Sequence[str | Path]) -> list[tuple[str, np.ndarray]]:
    """Files and directories (their .png/.jpg/.jpeg/.bmp/.tif/.tiff/.webp files, sorted)."""
    suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
    files: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in suffixes)
            if not found:
                raise InvalidInputError("--images", str(item), "a directory containing image files")
            files += found
        else:
            files.append(item)
    return [(str(p), to_rgb_uint8(str(p), argument="--images")) for p in files]


def available_backends(engine_dir: Path, manifest: EngineManifest) -> list[str]:
    """onnxruntime always; tensorrt when the directory has TensorRT engines and TensorRT imports."""
    found = ["onnxruntime"]
    if manifest.tensorrt is not None:
        try:
            import tensorrt  # noqa: F401

            found.append("tensorrt")
        except ImportError:
            pass
    return found


def run_report(engine_dir: str | Path, reference_model: Any, *, images: Sequence[tuple[str, np.ndarray]],
               backends: Sequence[str] | None = None, thresholds_file: str | Path | None = None,
               settings: CompareSettings | None = None, reference_name: str | None = None,
               progress: Callable[[str, int, int], None] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compare every backend with the reference. Returns (report.json content, raw results per
    backend for ``render.write_report``)."""
    engine_dir = Path(engine_dir)
    manifest = read_manifest(engine_dir)
    precision = manifest.precision
    thresholds = thresholds_for(precision, thresholds_file)
    chosen = list(backends or available_backends(engine_dir, manifest))
    for name in chosen:
        if name not in BACKENDS:
            raise InvalidInputError("--backends", name, f"one of {list(BACKENDS)}")
    if not images:
        raise InvalidInputError("--images", [], "at least one image")
    settings = settings or CompareSettings()
    reference = reference_runtime(reference_model, engine_dir)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "engine": {"name": manifest.name, "directory": str(engine_dir),
                   "precision": precision, "source": manifest.model.source},
        "reference": reference_name or f"fp32 PyTorch ({manifest.model.source})",
        "images": [name for name, _ in images],
        "settings": {"prompts_per_kind": settings.prompts_per_kind, "seed": settings.seed,
                     "worst_cases": settings.worst_cases, "boundary_tolerance": settings.boundary_tolerance},
        "thresholds": thresholds,
        "machine": describe_machine(),
        "backends": {},
    }
    results: dict[str, Any] = {}
    for name in chosen:
        try:
            runtime = SamRuntime.load(engine_dir, backend=name)
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(f"backend {name!r} is not available here: {exc}") from exc
        result = compare_backend(reference, runtime, images, settings=settings,
                                 progress=None if progress is None else (lambda d, t, n=name: progress(n, d, t)))
        providers = runtime.encoder.describe()["providers"]
        runtime.close()
        checks = evaluate(result, thresholds)
        results[name] = result
        record["backends"][name] = {
            "providers": providers,
            "passed": all(c["passed"] for c in checks),
            "checks": checks,
            "embeddings": result["embeddings"],
            "all": result["all"],
            "kinds": result["kinds"],
            "histograms": result["histograms"],
            "prompts": result["prompts"],
        }
    record["passed"] = all(b["passed"] for b in record["backends"].values())
    return record, results
