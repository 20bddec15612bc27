"""Can this machine run an engine directory's TensorRT plans? Checked from the manifest alone,
before a byte of a plan is deserialized (a plan from another TensorRT version or GPU
architecture makes TensorRT fail, or worse; we refuse with a sentence instead).

The manifest's ``tensorrt`` record (:class:`.record.TensorRTRecord`, written by
``samexport build --target tensorrt``)::

    {"version": "10.3.0", "gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0",
     "precision": "fp16", "engines": {"encoder": "encoder.engine", "decoder": "decoder.engine"},
     "profiles": {"encoder": [...], "decoder": [...]}, ...}

Rules (TensorRT's own, for plans built without version or hardware compatibility): the
TensorRT version must match in major.minor.patch, and the GPU's compute capability exactly.
Another GPU model of the same compute capability is accepted (kernels were tuned on the other one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...errors import EngineCompatibilityError
from . import cuda
from .record import TensorRTRecord

__all__ = ["DeviceInfo", "check_tensorrt_compatible", "local_device_info"]


@dataclass(frozen=True, kw_only=True)
class DeviceInfo:
    """What this machine offers: TensorRT version string, GPU name, compute capability "major.minor"."""

    tensorrt_version: str
    gpu: str
    compute_capability: str


def _release(version: str) -> tuple[str, ...]:
    return tuple(str(version).split(".")[:3])


def check_tensorrt_compatible(record: TensorRTRecord, device: DeviceInfo, directory: Path) -> None:
    """Raise EngineCompatibilityError unless ``device`` can run the plans ``record`` describes."""
    problems = []
    if _release(record.version) != _release(device.tensorrt_version):
        problems.append(f"TensorRT {record.version} built them, this machine has TensorRT {device.tensorrt_version}")
    if record.compute_capability != str(device.compute_capability):
        problems.append(f"they were built for compute capability {record.compute_capability} ({record.gpu}), "
                        f"this GPU is {device.compute_capability} ({device.gpu})")
    if problems:
        precision = record.precision
        raise EngineCompatibilityError(
            f"the TensorRT engines cannot run here: {'; '.join(problems)}. Rebuild them on this machine: "
            f"samexport build <fp32 engine directory> --precision {precision} --target tensorrt",
            path=str(directory),
        )


def local_device_info() -> DeviceInfo:
    """This machine's TensorRT version and first GPU (raises ImportError / RuntimeError without them)."""
    import tensorrt  # optional dependency, imported only when a TensorRT engine is asked for

    properties = cuda.check(cuda.load_cudart().cudaGetDeviceProperties(0))
    name = properties.name.decode() if isinstance(properties.name, bytes) else str(properties.name)
    return DeviceInfo(tensorrt_version=tensorrt.__version__, gpu=name.strip("\x00 "),
                      compute_capability=f"{properties.major}.{properties.minor}")
