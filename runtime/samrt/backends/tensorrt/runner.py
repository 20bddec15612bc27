"""TensorRT runner: one serialized plan, executed with TensorRT's Python API and cuda-python.

- Device buffers are allocated once per optimisation profile, at the profile's largest shapes,
  the first time a call needs that profile; calls then only copy.
- One CUDA stream and one execution context per runner; a lock serialises calls (TensorRT
  contexts are not safe to use from several threads at once), so a runner can be shared by
  threads. Copies are asynchronous on the stream; each call synchronises before returning.
- Inputs may be NumPy arrays (copied host to device) or any object exposing
  ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors, Numba): those are copied device to
  device, never through the host. Outputs come back as NumPy arrays.
- A call whose leading axis (images for the encoder, prompts for the decoder) passes every
  profile's max is split into chunks along that axis; the graphs treat those rows independently.

The plan's hash and its TensorRT / GPU compatibility are checked from the manifest before this
class is constructed (``samrt.manifest``, ``samrt.backends.tensorrt.compat``); the plan itself is
deserialised by :class:`~samrt.backends.tensorrt.loader.PlanLoader`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...errors import InferenceError, InvalidInputError
from ...spec import TensorSpec
from ..feeds import Described, check_feeds, leading_rows, row_inputs
from ..rows import RowScheduler
from . import cuda
from .loader import PlanLoader
from .profiles import Profile, max_leading, select_profile


def _interface(value: Any) -> dict[str, Any] | None:
    return getattr(value, "__cuda_array_interface__", None)


def _shape_and_dtype(value: Any) -> Described:
    shape, dtype, _ = _describe(value)
    return shape, dtype


def _describe(value: Any) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, on_device) of a NumPy array or a CUDA array-interface object."""
    iface = _interface(value)
    if iface is not None:
        if iface.get("strides") not in (None, ()):
            expected = np.cumprod((1,) + tuple(iface["shape"][:0:-1]))[::-1] * np.dtype(iface["typestr"]).itemsize
            if tuple(iface["strides"]) != tuple(int(s) for s in expected):
                raise InvalidInputError("feeds", "a strided CUDA array", "a C-contiguous CUDA array")
        return tuple(iface["shape"]), np.dtype(iface["typestr"]), True
    return value.shape, value.dtype, False


class TensorRTRunner:
    """One TensorRT plan, deserialised by a :class:`~samrt.backends.tensorrt.loader.PlanLoader`,
    with the optimisation ``profiles`` recorded at build time (a :class:`samrt.backends.Runner`)."""

    def __init__(self, loader: PlanLoader, *, profiles: Sequence[Profile], graph: str) -> None:
        self.path, self.graph = loader.path, graph
        self.profiles = list(profiles)
        plan = loader(profile_count=len(self.profiles))
        trt, self._cudart, self._check = plan.trt, plan.cudart, cuda.check
        self._runtime, self.engine = plan.runtime, plan.engine
        engine = self.engine
        self.context = engine.create_execution_context()
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        specs = {n: TensorSpec(n, np.dtype(trt.nptype(engine.get_tensor_dtype(n))).name,
                               tuple(d if d >= 0 else f"axis{i}" for i, d in enumerate(engine.get_tensor_shape(n))))
                 for n in names}
        self.inputs = {n: specs[n] for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT}
        self.outputs = {n: specs[n] for n in names if n not in self.inputs}
        self.dtypes = {n: np.dtype(s.dtype) for n, s in specs.items()}
        # inputs whose leading axis is dynamic can be split into chunks
        self.chunked = row_inputs(self.inputs)
        step = min((max_leading(self.profiles, n) for n in self.chunked), default=0)
        self.scheduler = RowScheduler(rows_per_run=step, graph=graph)
        self._stream = self._check(self._cudart.cudaStreamCreate())
        self._buffers: dict[int, dict[str, tuple[int, int]]] = {}  # profile -> name -> (pointer, bytes)
        self._active: int | None = None
        self._lock = threading.Lock()

    # -- the Runner interface --------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self.engine is None

    def describe(self) -> dict[str, Any]:
        return {"backend": "tensorrt", "providers": None, "device": "cuda", "threads": 0, "row_workers": 1,
                "profiles": len(self.profiles)}

    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        described = check_feeds(feeds, self.inputs, describe=_shape_and_dtype)
        total = leading_rows(described, self.chunked)
        if self.engine is None:
            raise InferenceError("the runner was closed", graph=self.graph)
        if not self.scheduler.splits(total):
            return self._run(feeds, None)
        return self.scheduler.run(feeds, rows=self.chunked, total=total, outputs=self.outputs,
                                  run_part=self._run)

    def close(self) -> None:
        with self._lock:
            for buffers in self._buffers.values():
                for pointer, _ in buffers.values():
                    self._cudart.cudaFree(pointer)
            self._buffers.clear()
            if self.engine is not None:
                self._cudart.cudaStreamDestroy(self._stream)
            self.context = self.engine = None  # type: ignore[assignment]
        self.scheduler.close()

    # -- internals -------------------------------------------------------------------------------
    def _run(self, feeds: Mapping[str, Any], into: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """One execution. into: C-contiguous host arrays (row slices of the full outputs) the
        outputs are copied into; returned as given."""
        if self.engine is None:
            raise InferenceError("the runner was closed", graph=self.graph)
        described = {name: _describe(value) for name, value in feeds.items()}
        shapes = {name: d[0] for name, d in described.items()}
        index = select_profile(self.profiles, shapes)
        if index is None:
            ranges = {n: r.to_dict() for n, r in self.profiles[-1].items()}
            raise InvalidInputError("feeds", shapes, f"shapes inside the engine's optimisation profiles {ranges} "
                                    "(rebuild with larger --max-points / --max-prompts)")
        cudart, check = self._cudart, self._check
        with self._lock:
            try:
                buffers = self._buffers_for(index)
                if self._active != index:
                    self.context.set_optimization_profile_async(index, self._stream)
                    self._active = index
                for name, value in feeds.items():
                    if not self.context.set_input_shape(name, shapes[name]):
                        raise InferenceError(f"TensorRT refused shape {shapes[name]} for {name}", graph=self.graph)
                    pointer, _ = buffers[name]
                    iface = _interface(value)
                    if iface is not None:
                        size = int(np.prod(shapes[name])) * described[name][1].itemsize
                        check(cudart.cudaMemcpyAsync(pointer, iface["data"][0], size,
                                                     cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice, self._stream))
                    else:
                        host = np.ascontiguousarray(value)
                        check(cudart.cudaMemcpyAsync(pointer, host.ctypes.data, host.nbytes,
                                                     cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream))
                for name, (pointer, _) in buffers.items():
                    self.context.set_tensor_address(name, pointer)
                if not self.context.execute_async_v3(self._stream):
                    raise InferenceError("TensorRT execution failed", graph=self.graph)
                outputs = {}
                for name in self.outputs:
                    shape = tuple(self.context.get_tensor_shape(name))
                    out = np.empty(shape, self.dtypes[name]) if into is None else into[name]
                    if out.shape != shape:
                        raise InferenceError(f"TensorRT gave {name} the shape {shape}, expected {out.shape}",
                                             graph=self.graph)
                    check(cudart.cudaMemcpyAsync(out.ctypes.data, buffers[name][0], out.nbytes,
                                                 cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream))
                    outputs[name] = out
                check(cudart.cudaStreamSynchronize(self._stream))
                return outputs
            except InferenceError:
                raise
            except Exception as exc:  # CUDA / TensorRT errors are untyped
                raise InferenceError(f"TensorRT failed ({type(exc).__name__}: {exc})", graph=self.graph) from exc

    def _buffers_for(self, index: int) -> dict[str, tuple[int, int]]:
        """Device buffers for profile ``index`` at its largest shapes (allocated on first use)."""
        if index in self._buffers:
            return self._buffers[index]
        cudart, check = self._cudart, self._check
        self.context.set_optimization_profile_async(index, self._stream)
        self._active = index
        largest = {name: self.profiles[index][name].max for name in self.inputs}
        for name, shape in largest.items():
            self.context.set_input_shape(name, shape)
        shapes = {**largest, **{n: tuple(self.context.get_tensor_shape(n)) for n in self.outputs}}
        buffers = {}
        for name, shape in shapes.items():
            size = int(np.prod(shape)) * self.dtypes[name].itemsize
            buffers[name] = (int(check(cudart.cudaMalloc(size))), size)
        self._buffers[index] = buffers
        return buffers
