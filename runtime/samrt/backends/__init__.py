"""Backends: one :class:`Runner` interface, one feed check (:mod:`.feeds`), one row scheduler
(:mod:`.rows`), and per backend a loader and a runner (:mod:`.onnxruntime`, :mod:`.tensorrt`).

:func:`select_backend` decides what ``"auto"`` means; :func:`load_runners` gives the encoder and
decoder runners of an engine directory. Nothing outside this package knows which backend runs.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import BackendUnavailableError, InvalidInputError
from .base import DESCRIBE_KEYS, Runner, check_runner
from .onnxruntime import OnnxRuntimeRunner, SessionLoader, decoder_runner
from .openvino import OpenVINORunner
from .openvino_record import OpenVINORecord
from .tensorrt.compat import check_tensorrt_compatible, local_device_info
from .tensorrt.loader import PlanLoader
from .tensorrt.record import TensorRTRecord
from .tensorrt.runner import TensorRTRunner

__all__ = ["BACKENDS", "DESCRIBE_KEYS", "Runner", "check_runner", "select_backend", "load_runners",
           "tensorrt_importable", "openvino_importable"]

BACKENDS = ("auto", "onnxruntime", "tensorrt", "openvino")
GRAPHS = ("encoder", "decoder")


def tensorrt_importable() -> bool:
    return importlib.util.find_spec("tensorrt") is not None


def openvino_importable() -> bool:
    return importlib.util.find_spec("openvino") is not None


def select_backend(requested: str, *, tensorrt_plans: TensorRTRecord | None,
                   openvino_models: OpenVINORecord | None = None) -> str:
    """The backend to load: ``requested`` itself, or for ``"auto"`` TensorRT where the engine
    directory has plans (``tensorrt_plans``: the manifest's tensorrt record, None without one) and
    TensorRT is importable, else OpenVINO where it has OpenVINO models and OpenVINO is
    importable, else onnxruntime. InvalidInputError for an unknown name."""
    if requested not in BACKENDS:
        raise InvalidInputError("backend", requested, " or ".join(f'"{b}"' for b in BACKENDS))
    if requested != "auto":
        return requested
    if tensorrt_plans is not None and tensorrt_importable():
        return "tensorrt"
    return "openvino" if openvino_models is not None and openvino_importable() else "onnxruntime"


def load_runners(backend: str, directory: Path, *, graph_files: Mapping[str, str],
                 tensorrt_plans: TensorRTRecord | None, openvino_models: OpenVINORecord | None = None,
                 providers: Sequence[str] | None = None, decoder_workers: int | None = None) -> tuple[Runner, Runner]:
    """(encoder, decoder) runners of ``directory`` on ``backend`` ("onnxruntime", "tensorrt" or
    "openvino", as :func:`select_backend` returns). graph_files: graph -> ONNX file name;
    tensorrt_plans / openvino_models: the manifest's tensorrt / openvino records (OpenVINO runs
    the directory's OpenVINO models at their recorded precision, or without them the ONNX graphs
    at fp32); providers / decoder_workers: onnxruntime only (see ``SamRuntime.load``)."""
    if backend == "tensorrt":
        return _tensorrt_runners(directory, tensorrt_plans)
    if backend == "openvino":
        files, precision = ((openvino_models.models, openvino_models.precision) if openvino_models is not None
                            else (graph_files, "fp32"))
        encoder, decoder = (OpenVINORunner.from_path(directory / files[graph], precision=precision, graph=graph)
                            for graph in GRAPHS)
        return encoder, decoder
    encoder = OnnxRuntimeRunner(SessionLoader(path=directory / graph_files["encoder"],
                                              providers=None if providers is None else _as_tuple(providers)))
    decoder = decoder_runner(directory / graph_files["decoder"], providers=providers,
                             running_on=encoder.providers, workers=decoder_workers)
    return encoder, decoder


def _as_tuple(providers: Any) -> Any:
    """Providers as a tuple, leaving a malformed value as it is for the loader to name."""
    return providers if isinstance(providers, str) or not isinstance(providers, Sequence) else tuple(providers)


def _tensorrt_runners(directory: Path, record: TensorRTRecord | None) -> tuple[Runner, Runner]:
    """Encoder and decoder TensorRT runners, after the compatibility check (no plan is read before it)."""
    if record is None:
        raise BackendUnavailableError(
            "this engine directory has no TensorRT engines: build them with `samexport build ENGINE_DIR "
            "--precision fp16 --target tensorrt` on the GPU machine, or use backend='onnxruntime'")
    try:
        device = local_device_info()
    except (ImportError, RuntimeError) as exc:
        raise BackendUnavailableError(
            f"the tensorrt backend needs the tensorrt and cuda-python packages and a CUDA GPU ({exc}); "
            "use backend='onnxruntime'") from exc
    check_tensorrt_compatible(record, device, directory)
    encoder, decoder = (
        TensorRTRunner(PlanLoader(path=directory / record.engines[graph]), profiles=record.profiles[graph],
                       graph=graph)
        for graph in GRAPHS)
    return encoder, decoder
