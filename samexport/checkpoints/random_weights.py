"""Seeded random weights with a realistic spread, for tests, smoke runs and benchmarks."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..config import SamConfig
from ..modeling.sam import SamModel

__all__ = ["random_model", "init_random_weights"]


def random_model(
    config: SamConfig, *, seed: int = 0, init: Callable[[SamModel, int], None] | None = None
) -> SamModel:
    """A :class:`SamModel` with seeded random weights of a realistic spread (see
    :func:`init_random_weights`). For tests, smoke runs and benchmarks only."""
    model = SamModel(config)
    (init or init_random_weights)(model, seed)
    return model.eval()


def init_random_weights(model: SamModel, seed: int) -> None:
    """Seeded random weights with a realistic spread, deterministic for a given seed.

    Linear / conv weights N(0, 1/fan_in) (activations keep unit scale at any width, so tiny
    and ViT-B models both give non-degenerate masks), biases N(0, 0.02), LayerNorm scales at 1
    and shifts at 0, learned tokens and embeddings N(0, 0.1), the Fourier matrix N(0, 1)
    (segment_anything's scale), absolute / relative position tables N(0, 0.02).

    Measured (relative change of the mask logits per relative change of the image embedding):
    with tokens at N(0, 1) the tiny decoder amplifies by ~1e4, at N(0, 0.3) the ViT-B decoder
    still by ~2e3, which turns float32 rounding into test noise (torch fp32 vs fp64: 2e-4 in
    iou). At N(0, 0.1) the gain is ~1.6 (ViT-B) to ~4 (tiny) and the logits still spread
    (std ~1, 45% positive).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "layer_norm" in name:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif param.dim() >= 2 and name.endswith(".weight") and "embed." not in name and "token" not in name:
                # A stride-2, kernel-2 transposed conv feeds each output from `in` channels.
                transposed = isinstance(_owner(model, name), torch.nn.ConvTranspose2d)
                fan_in = param.shape[0] if transposed else param[0].numel()
                param.copy_(noise / fan_in**0.5)
            elif name.endswith(".bias") or "pos_embed" in name or "rel_pos" in name:
                param.copy_(0.02 * noise)
            elif name == "shared_image_embedding.positional_embedding":
                param.copy_(noise)
            else:
                param.copy_(0.1 * noise)


def _owner(model: torch.nn.Module, name: str) -> torch.nn.Module:
    return model.get_submodule(name.rsplit(".", 1)[0])
