"""The PyTorch reference behind ``samrt.SamRuntime``'s runner interface.

``reference_runtime(model, engine_dir)`` gives a ``SamRuntime`` whose encoder and decoder are the
fp32 PyTorch graphs the engine was exported from, so a report compares engine against reference
with the *same* pre- and post-processing code on both sides: every difference it measures comes
from the graphs (export, precision, backend), not from processing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from samrt import SamRuntime, spec
from samrt.backends.feeds import check_feeds
from samrt.manifest import read_manifest

from .graphs import DecoderGraph, EncoderGraph
from .modeling.sam import SamModel


class TorchGraphRunner:
    """A torch module behind the :class:`samrt.backends.Runner` interface; ``inputs`` and
    ``outputs`` are the graph contract's :class:`samrt.spec.TensorSpec` s of ``graph``."""

    def __init__(self, module: torch.nn.Module, *, graph: str) -> None:
        self.module = module.eval()
        self.graph = graph
        inputs, outputs = spec.graph_contract(graph)
        self.inputs = {t.name: t for t in inputs}
        self.outputs = {t.name: t for t in outputs}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def describe(self) -> dict[str, Any]:
        return {"backend": "reference", "providers": ["torch-cpu-fp32"], "device": "cpu",
                "threads": torch.get_num_threads(), "row_workers": 1}

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        check_feeds(feeds, self.inputs)
        args = [torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in self.inputs]
        with torch.inference_mode():
            out = self.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {name: t.numpy() for name, t in zip(self.outputs, out, strict=True)}

    def close(self) -> None:
        self._closed = True


def reference_runtime(model: SamModel, engine_dir: str | Path) -> SamRuntime:
    """A ``SamRuntime`` over the fp32 PyTorch graphs of ``model``, with the engine's manifest."""
    directory = Path(engine_dir)
    manifest = read_manifest(directory)
    encoder = TorchGraphRunner(EncoderGraph(model), graph="encoder")
    decoder = TorchGraphRunner(DecoderGraph(model), graph="decoder")
    return SamRuntime(directory=directory, manifest=manifest, encoder=encoder, decoder=decoder,
                      backend="reference")
