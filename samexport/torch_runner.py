"""The PyTorch reference behind ``samrt.SamRuntime``'s runner interface.

``reference_runtime(model, engine_dir)`` gives a ``SamRuntime`` whose encoder and decoder are the
fp32 PyTorch graphs the engine was exported from, so a report compares engine against reference
with the *same* pre- and post-processing code on both sides: every difference it measures comes
from the graphs (export, precision, backend), not from processing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from samrt import SamRuntime, spec
from samrt.manifest import load_manifest

from .graphs import DecoderGraph, EncoderGraph
from .modeling.sam import SamModel


class TorchGraphRunner:
    """``infer(feeds) -> outputs`` for a torch module, names as in ``samrt.spec``."""

    def __init__(self, module: torch.nn.Module, *, inputs: list[str], outputs: list[str]) -> None:
        self.module = module.eval()
        self.input_names = inputs
        self.output_names = outputs
        self.providers = ["torch-cpu-fp32"]

    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        args = [torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in self.input_names]
        with torch.inference_mode():
            out = self.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {name: t.numpy() for name, t in zip(self.output_names, out, strict=True)}

    def close(self) -> None:
        pass


def reference_runtime(model: SamModel, engine_dir: str | Path) -> SamRuntime:
    """A ``SamRuntime`` over the fp32 PyTorch graphs of ``model``, with the engine's manifest."""
    directory = Path(engine_dir)
    manifest = load_manifest(directory)
    encoder = TorchGraphRunner(EncoderGraph(model), inputs=["pixel_values"], outputs=["image_embeddings"])
    decoder = TorchGraphRunner(DecoderGraph(model), inputs=[t.name for t in spec.decoder_inputs()],
                               outputs=[t.name for t in spec.decoder_outputs()])
    return SamRuntime(directory=directory, manifest=manifest, encoder=encoder, decoder=decoder,
                      backend="reference")
