"""ONNX -> TensorRT plans through polygraphy (``NetworkFromOnnxPath`` -> ``CreateConfig`` ->
``EngineFromNetwork``), one plan per graph, with the profiles of :mod:`samexport.tensorrt.profile_planning`.

Precision: fp32 builds the FP32 graphs with TF32 off. fp16 builds a *strongly typed* network
from the mixed-precision ONNX of :func:`samexport.precision.to_mixed_fp16` (the same file the
onnxruntime fp16 build writes): every tensor's type comes from the graph, so the FP32 islands
are kept by construction rather than by layer precision hints TensorRT may override, and no
FP16 builder flag is set (a strongly typed network refuses them). int8 is refused: TensorRT int8
needs calibration data, which this release does not collect.

The timing cache is loaded from ``timing_cache`` when that file exists and saved back after each
graph, so rebuilds (another precision, larger profiles) reuse the kernel timings.
Everything here imports TensorRT lazily; ``samexport build`` checks ``tensorrt_missing()`` first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from samrt.backends.tensorrt.compat import local_device_info
from samrt.backends.tensorrt.profiles import Profile
from samrt.backends.tensorrt.record import TensorRTRecord


def _progress_monitor(trt: Any, say: Callable[[str], None]) -> Any:
    """A TensorRT IProgressMonitor that reports each top-level build phase once."""

    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self.started: dict[str, float] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):  # noqa: ANN001 - TensorRT's signature
            if parent_phase is None:
                self.started[phase_name] = time.perf_counter()
                say(f"  {phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):  # noqa: ANN001
            return True  # never cancel

        def phase_finish(self, phase_name):  # noqa: ANN001
            if phase_name in self.started:
                say(f"  {phase_name} done in {time.perf_counter() - self.started.pop(phase_name):.0f} s")

    return Monitor()


def build_plan(onnx_path: Path, plan_path: Path, *, precision: str, profiles: list[Profile],
               timing_cache: Path, workspace_mb: int | None, say: Callable[[str], None]) -> float:
    """Build one plan from ``onnx_path`` (already in the precision's form) into ``plan_path``.
    Returns the build time in seconds. Raises whatever polygraphy / TensorRT raise."""
    import tensorrt as trt
    from polygraphy.backend.trt import CreateConfig, EngineFromNetwork, NetworkFromOnnxPath, SaveEngine
    from polygraphy.backend.trt import Profile as PolygraphyProfile

    started = time.perf_counter()
    network = NetworkFromOnnxPath(str(onnx_path), strongly_typed=precision == "fp16")
    trt_profiles = []
    for profile in profiles:
        entry = PolygraphyProfile()
        for name, shapes in profile.items():
            entry.add(name, min=shapes.min, opt=shapes.opt, max=shapes.max)
        trt_profiles.append(entry)
    options: dict[str, Any] = {
        "profiles": trt_profiles,
        "load_timing_cache": str(timing_cache) if timing_cache.exists() else None,
        "progress_monitor": _progress_monitor(trt, say),
    }
    if precision == "fp32":
        options["tf32"] = False
    if workspace_mb:
        options["memory_pool_limits"] = {trt.MemoryPoolType.WORKSPACE: workspace_mb << 20}
    config = CreateConfig(**options)
    engine = EngineFromNetwork(network, config=config, save_timing_cache=str(timing_cache))
    SaveEngine(engine, str(plan_path))()
    return time.perf_counter() - started


def built_tensorrt_record(*, precision: str, profiles: dict[str, list[Profile]], engines: dict[str, str],
                          seconds: dict[str, float], workspace_mb: int | None, timing_cache: str) -> TensorRTRecord:
    """The manifest's ``tensorrt`` record (see ``samrt.backends.tensorrt.compat``) for plans built on this machine."""
    device = local_device_info()
    return TensorRTRecord(
        version=device.tensorrt_version, gpu=device.gpu, compute_capability=device.compute_capability,
        precision=precision, strongly_typed=precision == "fp16", engines=engines,
        profiles={graph: tuple(p) for graph, p in profiles.items()},
        workspace_mb=workspace_mb, timing_cache=timing_cache,
        build_seconds={graph: round(s, 1) for graph, s in seconds.items()},
    )
