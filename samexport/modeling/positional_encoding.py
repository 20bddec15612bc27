"""Random Fourier feature positional encoding shared by the prompt encoder and the decoder."""

from __future__ import annotations

import math

import torch
from torch import nn


class RandomFourierEmbedding(nn.Module):
    """Encodes (x, y) coordinates in [0, 1] as ``[sin(2πWp'), cos(2πWp')]`` with ``p' = 2p - 1``.

    ``positional_embedding``: float32 [2, num_pos_feats] (Gaussian, std = ``scale``).
    Output channels: ``2 * num_pos_feats``.
    """

    def __init__(self, *, num_pos_feats: int, scale: float) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(scale * torch.randn(2, num_pos_feats))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        """coords: [..., 2] normalised to [0, 1] -> [..., 2 * num_pos_feats]."""
        projected = (2.0 * coords - 1.0) @ self.positional_embedding
        projected = (2.0 * math.pi) * projected
        return torch.cat([projected.sin(), projected.cos()], dim=-1)

    def dense_grid(self, size: int) -> torch.Tensor:
        """Encoding of the centre of every cell of a ``size`` x ``size`` grid: [1, C, size, size]."""
        centres = (torch.arange(size, dtype=self.positional_embedding.dtype,
                                device=self.positional_embedding.device) + 0.5) / size
        ys, xs = torch.meshgrid(centres, centres, indexing="ij")
        grid = torch.stack([xs, ys], dim=-1)
        return self.forward(grid).permute(2, 0, 1).unsqueeze(0)
