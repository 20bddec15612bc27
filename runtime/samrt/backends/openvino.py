"""OpenVINO runner: one graph (ONNX, or OpenVINO IR ``.xml`` + ``.bin``) compiled for the CPU.

The inference precision is an explicit setting and is read back from the compiled model: OpenVINO's
CPU default is bf16 wherever the CPU has bf16 instructions, so an fp32 engine asks for f32 and
the runner checks it got f32. Asking for bf16 on a CPU without bf16 is an error that says so
(BackendUnavailableError), never a silent fallback in either direction.

OpenVINO is an optional dependency (``samexport-runtime[openvino]``), imported when a graph is
loaded. Calls may come from several threads: each call runs in its own infer request of the one
compiled model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_int
from ..errors import BackendUnavailableError, InferenceError, InvalidInputError, ManifestError
from ..spec import TensorSpec
from .feeds import check_feeds

__all__ = ["PRECISIONS", "CompiledModelLoader", "OpenVINORunner", "cpu_capabilities"]

# samrt's precision names -> OpenVINO's inference precision hint
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
_CAPABILITY = {"fp32": "FP32", "bf16": "BF16"}  # OPTIMIZATION_CAPABILITIES entry each precision needs


def openvino_module() -> Any:
    """The ``openvino`` module; BackendUnavailableError naming the extra when it is not installed."""
    try:
        import openvino  # optional dependency, imported when a graph is loaded
    except ImportError as exc:
        raise BackendUnavailableError(
            "the openvino backend needs OpenVINO: pip install 'samexport-runtime[openvino]'") from exc
    return openvino


def cpu_capabilities() -> tuple[str, ...]:
    """OpenVINO's optimisation capabilities of this CPU (e.g. ``FP32``, ``BF16``, ``INT8``)."""
    return tuple(openvino_module().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


@dataclass(frozen=True, kw_only=True)
class CompiledModelLoader:
    """Reads and compiles ``path`` for the CPU at ``precision`` ("fp32" or "bf16") with
    ``threads`` inference threads (0: OpenVINO's default, the usable cores)."""

    path: Path
    precision: str = "fp32"
    threads: int = 0

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InvalidInputError("precision", self.precision, f"one of {sorted(PRECISIONS)}")
        check_int("threads", self.threads, low=0)

    def __call__(self) -> Any:
        """The compiled model; BackendUnavailableError when this CPU cannot run the precision,
        ManifestError naming the file when OpenVINO cannot read it."""
        ov = openvino_module()
        capabilities = cpu_capabilities()
        if _CAPABILITY[self.precision] not in capabilities:
            raise BackendUnavailableError(
                f"this CPU cannot run OpenVINO at {self.precision} (its capabilities: {list(capabilities)}); "
                "use precision='fp32', or another machine (bf16 needs AVX512_BF16 or AMX)")
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
        except Exception as exc:  # OpenVINO raises untyped errors for unreadable files
            raise ManifestError(f"OpenVINO could not read the graph ({_first_line(exc)})", path=str(self.path)) from exc
        config = {"INFERENCE_PRECISION_HINT": PRECISIONS[self.precision]}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = str(self.threads)
        try:
            compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:
            raise ManifestError(f"OpenVINO could not compile the graph ({_first_line(exc)})",
                                path=str(self.path)) from exc
        got = _precision_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
        if got != self.precision:
            raise BackendUnavailableError(
                f"OpenVINO compiled {self.path.name} at {got}, not the {self.precision} asked for")
        return compiled


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _precision_name(element_type: Any) -> str:
    """OpenVINO's element type of the inference precision as samrt's name ("fp32", "bf16", ...)."""
    name = str(element_type.get_type_name() if hasattr(element_type, "get_type_name") else element_type)
    return {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}.get(name, name)


def _spec(port: Any) -> TensorSpec:
    shape = tuple(d.get_length() if d.is_static else f"axis{i}" for i, d in enumerate(port.get_partial_shape()))
    return TensorSpec(port.get_any_name(), np.dtype(port.get_element_type().to_dtype()).name, shape)


class OpenVINORunner:
    """One graph compiled by a :class:`CompiledModelLoader` (a :class:`samrt.backends.Runner`).
    Whole calls run at once: the decoder's N and P are dynamic in the compiled model."""

    def __init__(self, loader: CompiledModelLoader, *, graph: str | None = None) -> None:
        self.loader = loader
        self.graph = graph or loader.path.name
        self._compiled = loader()
        self.inputs = {spec.name: spec for spec in map(_spec, self._compiled.inputs)}
        self.outputs = {spec.name: spec for spec in map(_spec, self._compiled.outputs)}
        self.precision = _precision_name(self._compiled.get_property("INFERENCE_PRECISION_HINT"))
        self.threads = int(self._compiled.get_property("INFERENCE_NUM_THREADS"))

    @classmethod
    def from_path(cls, path: Path, *, precision: str = "fp32", threads: int = 0,
                  graph: str | None = None) -> OpenVINORunner:
        return cls(CompiledModelLoader(path=Path(path), precision=precision, threads=threads), graph=graph)

    @property
    def closed(self) -> bool:
        return self._compiled is None

    def describe(self) -> dict[str, Any]:
        return {"backend": "openvino", "providers": None, "device": "cpu", "threads": self.threads,
                "row_workers": 1, "precision": self.precision}

    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        compiled = self._compiled
        if compiled is None:
            raise InferenceError("the runner was closed", graph=self.graph)
        check_feeds(feeds, self.inputs)
        try:
            request = compiled.create_infer_request()  # one per call: requests are not shared by threads
            request.infer({name: np.ascontiguousarray(value) for name, value in feeds.items()})
            return {name: np.array(request.get_tensor(name).data, copy=True) for name in self.outputs}
        except Exception as exc:  # OpenVINO raises untyped errors (shapes, allocation)
            raise InferenceError(f"OpenVINO failed ({type(exc).__name__}: {_first_line(exc)})",
                                 graph=self.graph) from exc

    def close(self) -> None:
        self._compiled = None
