"""A stand-in for the ``tensorrt`` and cuda-python modules, for testing samrt's TensorRT runner
on machines without a GPU (ours and CI's).

The "plan" is a JSON file naming an ONNX graph; the fake engine runs it with onnxruntime.
"Device memory" is a dict of NumPy byte arrays keyed by fake pointers, so every host/device
copy the runner makes really moves bytes, and a runner that skips a copy, copies the wrong size
or reads the wrong buffer gives wrong answers. Calls are counted for the tests to inspect.
"""

from __future__ import annotations

import ctypes
import json
import threading
import types
from pathlib import Path

import numpy as np
import onnxruntime as ort

_ORT_DTYPES = {"tensor(float)": np.dtype(np.float32), "tensor(int32)": np.dtype(np.int32)}


class FakeCudart:
    class cudaMemcpyKind:  # noqa: N801 - the real binding's name
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2
        cudaMemcpyDeviceToDevice = 3

    def __init__(self) -> None:
        self.memory: dict[int, np.ndarray] = {}
        self.next = 1 << 20
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def _count(self, name: str) -> None:
        with self.lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def cudaMalloc(self, size):  # noqa: N802
        self._count("cudaMalloc")
        with self.lock:
            pointer = self.next
            self.next += size + 4096
            self.memory[pointer] = np.zeros(size, np.uint8)
        return 0, pointer

    def cudaFree(self, pointer):  # noqa: N802
        self._count("cudaFree")
        del self.memory[pointer]
        return (0,)

    def cudaStreamCreate(self):  # noqa: N802
        return 0, 77

    def cudaStreamDestroy(self, stream):  # noqa: N802
        return (0,)

    def cudaStreamSynchronize(self, stream):  # noqa: N802
        return (0,)

    def cudaGetDeviceProperties(self, index):  # noqa: N802
        return 0, types.SimpleNamespace(name=b"Fake GPU", major=9, minor=0)

    def cudaMemcpyAsync(self, dst, src, size, kind, stream):  # noqa: N802
        kinds = self.cudaMemcpyKind
        if kind == kinds.cudaMemcpyHostToDevice:
            self._count("h2d")
            self.memory[dst][:size] = np.frombuffer((ctypes.c_uint8 * size).from_address(src), np.uint8)
        elif kind == kinds.cudaMemcpyDeviceToHost:
            self._count("d2h")
            ctypes.memmove(dst, self.memory[src].ctypes.data, size)
        else:
            self._count("d2d")
            self.memory[dst][:size] = self.memory[src][:size]
        return (0,)

    # helpers for tests
    def device_array(self, host: np.ndarray) -> FakeCudaArray:
        _, pointer = self.cudaMalloc(host.nbytes)
        self.memory[pointer][:] = np.frombuffer(np.ascontiguousarray(host).tobytes(), np.uint8)
        return FakeCudaArray(pointer, host.shape, host.dtype)

    def read(self, pointer: int, shape, dtype) -> np.ndarray:
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return self.memory[pointer][:size].view(dtype).reshape(shape).copy()


class FakeCudaArray:
    """A device array as CuPy / PyTorch expose it: only ``__cuda_array_interface__``."""

    def __init__(self, pointer: int, shape, dtype) -> None:
        self.__cuda_array_interface__ = {"shape": tuple(shape), "typestr": np.dtype(dtype).str,
                                         "data": (pointer, False), "version": 3, "strides": None}


class _Engine:
    def __init__(self, onnx_path: Path, profiles: int, cudart: FakeCudart) -> None:
        self.session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.cudart = cudart
        self.num_optimization_profiles = profiles
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = {o.name: o for o in self.session.get_outputs()}
        self.names = list(self.inputs) + list(self.outputs)
        self.num_io_tensors = len(self.names)

    def get_tensor_name(self, index):
        return self.names[index]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name in self.inputs else TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return _ORT_DTYPES[(self.inputs.get(name) or self.outputs[name]).type]

    def get_tensor_shape(self, name):
        shape = (self.inputs.get(name) or self.outputs[name]).shape
        return tuple(d if isinstance(d, int) else -1 for d in shape)

    def create_execution_context(self):
        return _Context(self)


class _Context:
    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.profile = None
        self.busy = threading.Lock()

    def set_optimization_profile_async(self, index, stream):
        self.profile = index
        return True

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        if name in self.engine.inputs:
            return self.shapes[name]
        leading = next(self.shapes[n][0] for n, i in self.engine.inputs.items() if not isinstance(i.shape[0], int))
        return tuple(leading if not isinstance(d, int) else d for d in self.engine.outputs[name].shape)

    def set_tensor_address(self, name, pointer):
        self.addresses[name] = pointer
        return True

    def execute_async_v3(self, stream):
        if not self.busy.acquire(blocking=False):
            raise RuntimeError("execution context used by two threads at once")
        try:
            memory = self.engine.cudart
            feeds = {n: memory.read(self.addresses[n], self.shapes[n], self.engine.get_tensor_dtype(n))
                     for n in self.engine.inputs}
            outputs = self.engine.session.run(list(self.engine.outputs), feeds)
            for name, value in zip(self.engine.outputs, outputs, strict=True):
                raw = np.frombuffer(np.ascontiguousarray(value).tobytes(), np.uint8)
                memory.memory[self.addresses[name]][:raw.size] = raw
            return True
        finally:
            self.busy.release()


class TensorIOMode:
    INPUT = "input"
    OUTPUT = "output"


def make_modules(directory: Path) -> tuple[types.ModuleType, FakeCudart]:
    """(a fake ``tensorrt`` module, the fake cudart it uses); plans are read relative to ``directory``."""
    cudart = FakeCudart()
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.99.1"

    class Logger:
        WARNING = 2

        def __init__(self, level) -> None:
            self.level = level

    class Runtime:
        def __init__(self, logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            plan = json.loads(data)
            return _Engine(directory / plan["onnx"], plan["profiles"], cudart)

    trt.Logger, trt.Runtime, trt.TensorIOMode = Logger, Runtime, TensorIOMode
    trt.nptype = lambda dtype: dtype
    return trt, cudart


def write_fake_plans(directory: Path, profiles: dict[str, list]) -> dict[str, str]:
    """A fake plan per graph beside its ONNX file; returns the engines record."""
    engines = {}
    for graph, graph_profiles in profiles.items():
        name = f"{graph}.engine"
        (directory / name).write_text(json.dumps({"onnx": f"{graph}.onnx", "profiles": len(graph_profiles)}))
        engines[graph] = name
    return engines
