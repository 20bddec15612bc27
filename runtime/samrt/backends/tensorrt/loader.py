"""Deserialising a TensorRT plan: the loader half of the TensorRT backend."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ManifestError
from . import cuda

__all__ = ["PlanLoader", "LoadedPlan"]


@dataclass(frozen=True, kw_only=True)
class LoadedPlan:
    """The TensorRT module, the CUDA runtime bindings, the TensorRT runtime that owns the engine
    (kept alive with it), and the deserialised ``ICudaEngine``."""

    trt: Any
    cudart: Any
    runtime: Any
    engine: Any


@dataclass(frozen=True, kw_only=True)
class PlanLoader:
    """Deserialises the plan at ``path`` (hash and compatibility already checked from the manifest)."""

    path: Path

    def __call__(self, *, profile_count: int) -> LoadedPlan:
        """The loaded plan; ManifestError when TensorRT refuses it or its optimisation profiles
        are not the ``profile_count`` the manifest records."""
        import tensorrt as trt  # optional dependency, imported when a plan is loaded

        cudart = cuda.load_cudart()
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine(Path(self.path).read_bytes())
        if engine is None:
            raise ManifestError("TensorRT could not deserialize this plan (another TensorRT version or GPU?)",
                                path=str(self.path))
        if engine.num_optimization_profiles != profile_count:
            raise ManifestError(f"the plan has {engine.num_optimization_profiles} optimisation profiles, the "
                                f"manifest records {profile_count}", path=str(self.path))
        return LoadedPlan(trt=trt, cudart=cudart, runtime=runtime, engine=engine)
