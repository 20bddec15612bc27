"""``inspect_engine``: what an engine directory holds and whether its TensorRT plans run here —
the library behind ``samexport inspect``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from samrt.backends.tensorrt.compat import check_tensorrt_compatible, local_device_info
from samrt.engine_manifest import EngineManifest
from samrt.errors import EngineCompatibilityError
from samrt.manifest import read_manifest

__all__ = ["EngineInspection", "inspect_engine"]


@dataclass(frozen=True, kw_only=True)
class EngineInspection:
    """The verified ``manifest`` of ``directory``; ``here``: whether this machine can run its
    TensorRT plans, in words (None without plans); ``incompatible``: the error saying why this
    machine cannot run plans it could otherwise load (None when compatible or not asked)."""

    directory: Path
    manifest: EngineManifest
    here: str | None
    incompatible: EngineCompatibilityError | None

    def lines(self) -> list[str]:
        """The description ``samexport inspect`` prints, one line per entry."""
        m = self.manifest
        lines = [f"{m.name}: verified ({len(m.artifacts)} artefacts, sha256 match)",
                 f"  source     {m.model.source}" + (f" (sha256 {m.model.sha256[:16]}...)" if m.model.sha256 else ""),
                 f"  precision  {m.precision}" + (" (FP32 graphs emulating FP16)" if m.emulation else "")]
        if m.precision_policy is not None:
            policy = m.precision_policy
            lines.append(f"  policy     {policy.name}: {policy.note} (FP32 nodes {policy.fp32_nodes})")
        for graph, entry in m.graphs.items():
            inputs = ", ".join(f"{t.name}{list(t.shape)}" for t in entry.inputs)
            lines.append(f"  {graph:<10} {entry.file} (opset {entry.opset}): {inputs}")
        if m.accuracy is not None:
            lines.append(f"  accuracy   {'PASS' if m.accuracy.passed else 'FAIL'} vs the fp32 reference over "
                         f"{m.accuracy.prompts} prompts (mask IoU mean {m.accuracy.mask_iou['mean']:.4f})")
        if m.openvino is not None:
            lines.append(f"  openvino   OpenVINO {m.openvino.version} IR at {m.openvino.precision}, "
                         f"models {sorted(m.openvino.models.values())}")
        record = m.tensorrt
        if record is None:
            lines.append("  tensorrt   no engines (onnxruntime only)")
            return lines
        lines.append(f"  tensorrt   TensorRT {record.version}, {record.gpu} (compute capability "
                     f"{record.compute_capability}), {record.precision}, engines {sorted(record.engines.values())}")
        if self.here is not None:
            lines.append(f"  here       {self.here}")
        return lines


def inspect_engine(directory: str | Path) -> EngineInspection:
    """Verify ``directory`` (manifest, sha256 of every artefact; ManifestError otherwise) and
    check its TensorRT plans, if any, against this machine's TensorRT and GPU."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.tensorrt is None:
        return EngineInspection(directory=directory, manifest=manifest, here=None, incompatible=None)
    try:
        device = local_device_info()
    except (ImportError, RuntimeError) as exc:
        return EngineInspection(directory=directory, manifest=manifest, incompatible=None,
                                here=f"cannot run the TensorRT engines ({exc}); onnxruntime can run the ONNX graphs")
    try:
        check_tensorrt_compatible(manifest.tensorrt, device, directory)
    except EngineCompatibilityError as exc:
        return EngineInspection(directory=directory, manifest=manifest, here=None, incompatible=exc)
    return EngineInspection(directory=directory, manifest=manifest, incompatible=None,
                            here=f"compatible (TensorRT {device.tensorrt_version}, {device.gpu})")
