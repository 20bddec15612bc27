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
        """The plain form, for the tokens' self-attention: query, key, value [M, T, C] -> [M, T, C]."""
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        probs = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        out = (probs @ v).transpose(1, 2)
        return self.out_proj(out.reshape(out.shape[0], out.shape[1], -1))

    # The two cross-attentions never project the image. A head's logit q_h . (W_h x + b_h) equals
    # (W_h^T q_h) . x + q_h . b_h, and sum_n p_n (W_h x_n + b_h) = W_h (sum_n p_n x_n) + b_h when
    # the p_n sum to 1; so the few token-side vectors are carried into the image's C channels
    # instead of the HW image vectors into the heads. For T tokens and H heads that is two
    # [H*T, C] x [C, HW] products per attention in place of two or three [HW, C] x [C, C/r]
    # projections (ViT-B decoder, T = 7: 59M instead of 134M multiply-adds each) and no
    # [HW, heads, d] transposes. Same arithmetic up to float reassociation. The products grow
    # with H*T: past ~16 tokens (11 points in one prompt on ViT-B) they cost more than the
    # projections (benchmarks/decoder_attention.py: 0.69x the time at 2 points, 1.11x at 17).

    def _per_head(self, weight: torch.Tensor) -> torch.Tensor:
        """A weight [inner, C] (inner indexed by head, then by d) as [H, d, C]."""
        return weight.reshape(self.num_heads, -1, weight.shape[1])

    def _tokens_into_image_space(self, tokens: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
        """tokens [M, T, inner] (already projected) -> [M, H*T, C]: row (h, t) is W_h^T tokens_h[t]."""
        heads = self._heads(tokens)  # [M, H, T, d]
        carried = heads @ self._per_head(linear.weight)  # [M, H, T, C]
        return carried.reshape(carried.shape[0], -1, carried.shape[-1])

    def attend_to_image(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """Tokens attend to the image: query [M, T, C], key and value [M|1, HW, C] -> [M, T, C].

        k_proj's bias adds one constant per (head, token) row of logits, which the softmax over
        the image cancels, so it is not applied.
        """
        q = self.q_proj(query) * self.scale
        logits = self._tokens_into_image_space(q, self.k_proj) @ key.transpose(-2, -1)  # [M, H*T, HW]
        mixed = logits.softmax(dim=-1) @ value  # [M, H*T, C]: each head's average image vector
        m, tokens = query.shape[0], query.shape[1]
        mixed = mixed.reshape(m, self.num_heads, tokens, -1)
        heads = mixed @ self._per_head(self.v_proj.weight).transpose(-2, -1)  # [M, H, T, d]
        out = heads.transpose(1, 2).reshape(m, tokens, -1) + self.v_proj.bias
        return self.out_proj(out)

    def attend_from_image(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """The image attends to the tokens: query [M, HW, C], key and value [M, T, C] -> [M, HW, C]."""
        k = self.k_proj(key) * self.scale
        carried_k = self._tokens_into_image_space(k, self.q_proj)  # [M, H*T, C]
        # q_proj's bias gives each (head, token) column its own constant: q_b,h . k_h[t]
        bias = self._heads(k) @ self.q_proj.bias.reshape(self.num_heads, -1, 1)  # [M, H, T, 1]
        logits = query @ carried_k.transpose(-2, -1) + bias.reshape(bias.shape[0], 1, -1)
        m, pixels, tokens = query.shape[0], query.shape[1], key.shape[1]
        probs = logits.reshape(m, pixels, self.num_heads, tokens).softmax(dim=-1)
        # out_proj(concat_h sum_t p v_h[t]) = sum_(h,t) p (W_out,h v_h[t]) + b_out
        carried_v = self._heads(self.v_proj(value)) @ self._per_head(self.out_proj.weight.T)  # [M, H, T, C]
        carried_v = carried_v.reshape(m, -1, carried_v.shape[-1])
        return probs.reshape(m, pixels, -1) @ carried_v + self.out_proj.bias


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
        queries = self.layer_norm2(queries + self.cross_attn_token_to_image.attend_to_image(q, k, keys))
        queries = self.layer_norm3(queries + self.mlp(queries))

        q, k = queries + query_pe, keys + key_pe
        keys = self.layer_norm4(keys + self.cross_attn_image_to_token.attend_from_image(k, q, queries))
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
        queries = self.layer_norm_final_attn(queries + self.final_attn_token_to_image.attend_to_image(q, k, keys))
        return queries, keys
