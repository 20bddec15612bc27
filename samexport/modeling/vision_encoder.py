"""The ViT image encoder: patch embedding, windowed/global attention blocks, neck.

Input ``pixel_values`` float32 [B, 3, S, S] (S = ``image_size``, 1024 for the released models);
output ``image_embeddings`` float32 [B, output_channels, S/patch, S/patch] ([B, 256, 64, 64]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import SamVisionConfig
from .common import LayerNorm2d, MLPBlock


class PatchEmbeddings(nn.Module):
    """Non-overlapping patch projection: [B, 3, S, S] -> [B, S/p, S/p, hidden] (channels last)."""

    def __init__(self, config: SamVisionConfig) -> None:
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size,
            kernel_size=config.patch_size, stride=config.patch_size,
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projection(pixel_values).permute(0, 2, 3, 1)


def relative_position_table(rel_pos: torch.Tensor, q_size: int, k_size: int) -> torch.Tensor:
    """Relative-position embeddings for every (query, key) pair along one axis.

    rel_pos: [L, head_dim] learned table; returns [q_size, k_size, head_dim]. When the table
    length differs from ``2 * max(q, k) - 1`` it is linearly resampled, as in SAM.
    """
    length = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != length:
        rel_pos = F.interpolate(
            rel_pos.t().unsqueeze(0), size=length, mode="linear"
        ).squeeze(0).t()
    q_scale = max(k_size / q_size, 1.0)
    k_scale = max(q_size / k_size, 1.0)
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * q_scale
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * k_scale
    index = (q_coords - k_coords + (k_size - 1) * k_scale).long()
    return rel_pos[index]


class VisionAttention(nn.Module):
    """Multi-head self-attention over a [B, H, W, C] grid with decomposed relative positions.

    ``grid_size`` is the attention's spatial extent: the window side for windowed layers, the
    embedding grid side for global layers; it sizes the relative-position tables [2g-1, head_dim].
    """

    def __init__(self, config: SamVisionConfig, *, grid_size: int) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        head_dim = config.hidden_size // config.num_attention_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.use_rel_pos = config.use_rel_pos
        if self.use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * grid_size - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * grid_size - 1, head_dim))

    def forward(self, x: torch.Tensor, *, window: int = 0) -> torch.Tensor:
        """[B, H, W, C] -> [B, H, W, C]: global attention (``window`` 0) or attention within
        ``window`` x ``window`` windows, the grid zero-padded to a multiple of ``window``."""
        if window == 0:
            return self.proj(self._attend(self.qkv(x)))
        # qkv and proj act token by token, so they run on the H x W tokens only, not on the
        # windows' zero padding (64 -> 70 on ViT-B: 20 % more tokens). A padding token's qkv is
        # the bias alone, so the bias is added after padding: the same result as projecting the
        # padded windows, ~3 % less arithmetic for the ViT-B encoder.
        height, width = x.shape[1], x.shape[2]
        windows, hp, wp = window_partition(F.linear(x, self.qkv.weight), window)
        if self.qkv.bias is not None:
            windows = windows + self.qkv.bias
        return self.proj(window_unpartition(self._attend(windows), window, (hp, wp), (height, width)))

    def _attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """The attention between the projections: qkv [B, H, W, 3C] -> [B, H, W, C] (before ``proj``)."""
        batch, height, width, _ = qkv.shape
        tokens = height * width
        qkv = qkv.reshape(batch, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, batch * self.num_heads, tokens, -1).unbind(0)
        logits = (q * self.scale) @ k.transpose(-2, -1)
        if self.use_rel_pos:
            logits = logits + self._relative_bias(q, height, width)
        probs = logits.softmax(dim=-1)
        out = (probs @ v).reshape(batch, self.num_heads, height, width, -1)
        return out.permute(0, 2, 3, 1, 4).reshape(batch, height, width, -1)

    def _relative_bias(self, q: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """[B*heads, HW, HW] bias: q·R_h(row) + q·R_w(col), computed per axis."""
        table_h = relative_position_table(self.rel_pos_h, height, height)
        table_w = relative_position_table(self.rel_pos_w, width, width)
        bh, _, dim = q.shape
        grid_q = q.reshape(bh, height, width, dim)
        bias_h = torch.einsum("bhwc,hkc->bhwk", grid_q, table_h)
        bias_w = torch.einsum("bhwc,wkc->bhwk", grid_q, table_w)
        bias = bias_h[:, :, :, :, None] + bias_w[:, :, :, None, :]
        return bias.reshape(bh, height * width, height * width)


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, int, int]:
    """[B, H, W, C] -> ([B * nWin, window, window, C], padded H, padded W); zero padding."""
    batch, height, width, channels = x.shape
    pad_h = (window - height % window) % window
    pad_w = (window - width % window) % window
    x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = height + pad_h, width + pad_w
    x = x.reshape(batch, hp // window, window, wp // window, window, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, channels), hp, wp


def window_unpartition(
    windows: torch.Tensor, window: int, padded: tuple[int, int], size: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`window_partition`, dropping the padding: -> [B, H, W, C]."""
    hp, wp = padded
    height, width = size
    channels = windows.shape[-1]
    x = windows.reshape(-1, hp // window, wp // window, window, window, channels)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(-1, hp, wp, channels)
    return x[:, :height, :width, :]


class VisionLayer(nn.Module):
    """Pre-norm transformer block; ``window_size`` 0 means global attention."""

    def __init__(self, config: SamVisionConfig, *, window_size: int) -> None:
        super().__init__()
        self.window_size = window_size
        grid = window_size if window_size > 0 else config.embedding_size
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = VisionAttention(config, grid_size=grid)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = MLPBlock(
            hidden_size=config.hidden_size, mlp_dim=config.resolved_mlp_dim, act=config.hidden_act
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.layer_norm1(x), window=self.window_size)
        return x + self.mlp(self.layer_norm2(x))


class VisionNeck(nn.Module):
    """1x1 conv -> LayerNorm2d -> 3x3 conv -> LayerNorm2d, to ``output_channels``."""

    def __init__(self, config: SamVisionConfig) -> None:
        super().__init__()
        out = config.output_channels
        self.conv1 = nn.Conv2d(config.hidden_size, out, kernel_size=1, bias=False)
        self.layer_norm1 = LayerNorm2d(out, eps=1e-6)
        self.conv2 = nn.Conv2d(out, out, kernel_size=3, padding=1, bias=False)
        self.layer_norm2 = LayerNorm2d(out, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer_norm1(self.conv1(x.permute(0, 3, 1, 2)))
        return self.layer_norm2(self.conv2(x))


class VisionEncoder(nn.Module):
    """[B, 3, S, S] pixel values -> [B, output_channels, S/p, S/p] image embeddings."""

    def __init__(self, config: SamVisionConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embed = PatchEmbeddings(config)
        if config.use_abs_pos:
            grid = config.embedding_size
            self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, config.hidden_size))
        else:
            self.pos_embed = None
        self.layers = nn.ModuleList(
            VisionLayer(
                config,
                window_size=0 if i in config.global_attn_indexes else config.window_size,
            )
            for i in range(config.num_hidden_layers)
        )
        self.neck = VisionNeck(config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(pixel_values)
        if self.pos_embed is not None:
            x = x + self.pos_embed
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)
