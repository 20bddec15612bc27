"""Small building blocks shared by the SAM sub-modules."""

from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


def activation(name: str) -> nn.Module:
    """``"gelu"`` (exact, erf-based, as SAM was trained) or ``"relu"``."""
    return _ACTIVATIONS[name]()


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel axis of a [B, C, H, W] tensor.

    Implemented as a transpose around ``nn.LayerNorm`` so that ONNX export produces a single
    ``LayerNormalization`` node (opset >= 17), which TensorRT can keep in FP32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class MLPBlock(nn.Module):
    """Linear -> activation -> Linear, applied on the last axis."""

    def __init__(self, *, hidden_size: int, mlp_dim: int, act: str) -> None:
        super().__init__()
        self.lin1 = nn.Linear(hidden_size, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, hidden_size)
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class FeedForward(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (none after the last).

    Used for the hypernetwork MLPs and the IoU head of the mask decoder.
    """

    def __init__(self, *, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.proj_in = nn.Linear(input_dim, hidden_dim)
        self.layers = nn.ModuleList(nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers - 2))
        self.proj_out = nn.Linear(hidden_dim, output_dim)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.proj_in(x))
        for layer in self.layers:
            x = self.act(layer(x))
        return self.proj_out(x)
