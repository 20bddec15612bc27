"""The two-way transformer of the mask decoder.

Tokens (output tokens + prompt tokens) attend to themselves and to the image; the image
attends back to the tokens. Shapes: tokens [M, T, C], image [M, HW, C], image positions
[M or 1, HW, C].
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import SamMaskDecoderConfig
from .common import MLPBlock


class Attention(nn.Module):
    """Multi-head attention whose inner width is ``hidden_size / downsample_rate``."""

    def __init__(self, config: SamMaskDecoderConfig, *, downsample_rate: int) -> None:
        super().__init__()
        inner = config.hidden_size // downsample_rate
        self.num_heads = config.num_attention_heads
        self.q_proj = nn.Linear(config.hidden_size, inner)
        self.k_proj = nn.Linear(config.hidden_size, inner)
        self.v_proj = nn.Linear(config.hidden_size, inner)
        self.out_proj = nn.Linear(inner, config.hidden_size)
        self.scale = (inner // self.num_heads) ** -0.5

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        return x.reshape(batch, tokens, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        probs = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = (probs @ v).transpose(1, 2)
        return self.out_proj(out.reshape(out.shape[0], out.shape[1], -1))


class TwoWayAttentionBlock(nn.Module):
    """Self-attention, token->image, MLP, image->token; each followed by a LayerNorm."""

    def __init__(self, config: SamMaskDecoderConfig, *, skip_first_layer_pe: bool) -> None:
        super().__init__()
        c, eps = config.hidden_size, config.layer_norm_eps
        rate = config.attention_downsample_rate
        self.skip_first_layer_pe = skip_first_layer_pe
        self.self_attn = Attention(config, downsample_rate=1)
        self.layer_norm1 = nn.LayerNorm(c, eps=eps)
        self.cross_attn_token_to_image = Attention(config, downsample_rate=rate)
        self.layer_norm2 = nn.LayerNorm(c, eps=eps)
        self.mlp = MLPBlock(hidden_size=c, mlp_dim=config.mlp_dim, act=config.hidden_act)
        self.layer_norm3 = nn.LayerNorm(c, eps=eps)
        self.layer_norm4 = nn.LayerNorm(c, eps=eps)
        self.cross_attn_image_to_token = Attention(config, downsample_rate=rate)

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, query_pe: torch.Tensor, key_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.layer_norm1(queries)

        q, k = queries + query_pe, keys + key_pe
        queries = self.layer_norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.layer_norm3(queries + self.mlp(queries))

        q, k = queries + query_pe, keys + key_pe
        keys = self.layer_norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """``num_hidden_layers`` two-way blocks and a final token->image attention."""

    def __init__(self, config: SamMaskDecoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(config, skip_first_layer_pe=(i == 0))
            for i in range(config.num_hidden_layers)
        )
        self.final_attn_token_to_image = Attention(
            config, downsample_rate=config.attention_downsample_rate
        )
        # transformers and segment_anything both use nn.LayerNorm's default eps here.
        self.layer_norm_final_attn = nn.LayerNorm(config.hidden_size)

    def forward(
        self, tokens: torch.Tensor, image: torch.Tensor, image_pe: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [M, T, C]; image, image_pe [M|1, C, h, w] -> (tokens [M, T, C], image [M, hw, C])."""
        keys = image.flatten(2).transpose(1, 2)
        key_pe = image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        q, k = queries + tokens, keys + key_pe
        queries = self.layer_norm_final_attn(queries + self.final_attn_token_to_image(q, k, keys))
        return queries, keys
