"""onnxruntime runner: CPUExecutionProvider everywhere, CUDA when onnxruntime-gpu sees a GPU."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailableError, InferenceError, InvalidInputError, ManifestError

_ORT_TYPES = {"float32": "tensor(float)", "int32": "tensor(int32)", "int64": "tensor(int64)",
              "float16": "tensor(float16)"}


def available_providers() -> list[str]:
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendUnavailableError(
            "onnxruntime is not installed: pip install 'samexport-runtime[onnxruntime]'"
        ) from exc
    return list(ort.get_available_providers())


# onnxruntime's SkipLayerNormFusion makes the prompt decoder slower on CPU: its fused kernel
# took ~3.5 ms per [1, 4096, 256] LayerNorm on the ViT-B decoder (2-core x86), and switching the
# fusion off cut the whole decoder call from ~37 to ~32 ms (N = 1) and from ~39 to ~36 ms per
# prompt (N = 16). The encoder gains from it (6.4 s vs 7.1 s), so it keeps the fusion.
DECODER_DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


class OnnxRuntimeRunner:
    """One ONNX graph in one onnxruntime session.

    ``infer`` checks input names, dtypes and ranks against the graph before running.
    onnxruntime sessions are safe to call from several threads at once.
    """

    def __init__(self, path: Path, *, providers: Sequence[str] | None = None, threads: int = 0,
                 disabled_optimizers: Sequence[str] = (), arena: bool = True) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The decoder runs without onnxruntime's CPU arena: the arena grows on every new input
        # shape (N prompts; onnxruntime #11118) and keeps what it took. Measured on the ViT-B
        # decoder: same latency. The encoder's input shape is fixed, so it keeps its arena (its
        # large tensors would otherwise be page-faulted in on every call).
        options.enable_cpu_mem_arena = arena
        if threads:
            options.intra_op_num_threads = threads
        chosen = list(providers or self.default_providers())
        try:
            self.session = ort.InferenceSession(str(path), options, providers=chosen,
                                                disabled_optimizers=list(disabled_optimizers))
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ManifestError(f"onnxruntime could not load the graph ({exc})", path=str(path)) from exc
        self.path = path
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    @staticmethod
    def default_providers() -> list[str]:
        providers = available_providers()
        return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in providers]

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if set(feeds) != set(self.inputs):
            raise InvalidInputError("feeds", sorted(feeds), f"exactly the inputs {sorted(self.inputs)}")
        for name, value in feeds.items():
            meta = self.inputs[name]
            if _ORT_TYPES.get(value.dtype.name) != meta.type:
                raise InvalidInputError(name, str(value.dtype), meta.type)
            if len(meta.shape) != value.ndim:
                raise InvalidInputError(name, value.shape, f"rank {len(meta.shape)} {meta.shape}")
        session = self.session
        if session is None:
            raise InferenceError("the runner was closed", graph=self.path.name)
        try:
            outputs = session.run(self.output_names, feeds)
        except Exception as exc:  # onnxruntime raises untyped errors (allocation, kernel failures)
            raise InferenceError(f"onnxruntime failed ({type(exc).__name__}: {exc})", graph=self.path.name) from exc
        return dict(zip(self.output_names, outputs, strict=True))

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
