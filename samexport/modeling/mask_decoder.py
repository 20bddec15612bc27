"""The mask decoder: output tokens through the two-way transformer, then hypernetwork masks.

Works on a flat batch of M prompts: image [M|1, C, g, g] (already summed with the dense prompt
embedding), tokens [M, T, C]. Returns logits for *all* ``num_multimask_outputs + 1`` mask tokens
([M, K, 4g, 4g]) and their predicted IoU ([M, K]); callers pick token 0 (single) or 1.. (multi).
"""

from __future__ import annotations

import torch
from torch import nn

from ..config import SamMaskDecoderConfig
from .common import FeedForward, LayerNorm2d
from .transformer import TwoWayTransformer


class MaskDecoder(nn.Module):
    def __init__(self, config: SamMaskDecoderConfig) -> None:
        super().__init__()
        c = config.hidden_size
        self.num_mask_tokens = config.num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, c)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, c)
        self.transformer = TwoWayTransformer(config)
        self.upscale_conv1 = nn.ConvTranspose2d(c, c // 4, kernel_size=2, stride=2)
        self.upscale_layer_norm = LayerNorm2d(c // 4, eps=1e-6)
        self.upscale_conv2 = nn.ConvTranspose2d(c // 4, c // 8, kernel_size=2, stride=2)
        self.act = nn.GELU()
        self.output_hypernetworks_mlps = nn.ModuleList(
            FeedForward(input_dim=c, hidden_dim=c, output_dim=c // 8, num_layers=3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = FeedForward(
            input_dim=c, hidden_dim=config.iou_head_hidden_dim,
            output_dim=self.num_mask_tokens, num_layers=config.iou_head_depth,
        )

    def output_tokens(self, batch: int) -> torch.Tensor:
        """[batch, 1 + K, C]: the IoU token followed by the K mask tokens."""
        tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        return tokens.unsqueeze(0).expand(batch, -1, -1)

    def forward(
        self, image: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """image [M, C, g, g] (dense prompt added), image_pe [1, C, g, g], sparse [M, P, C].

        Returns (low-res logits float32 [M, K, 4g, 4g], iou predictions float32 [M, K]).
        """
        m = sparse.shape[0]
        tokens = torch.cat([self.output_tokens(m), sparse], dim=1)
        image = image.expand(m, -1, -1, -1)
        _, c, h, w = image.shape
        hs, src = self.transformer(tokens, image, image_pe)
        iou_out = hs[:, 0, :]
        mask_out = hs[:, 1 : 1 + self.num_mask_tokens, :]

        hyper = torch.stack(
            [mlp(mask_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], dim=1
        )
        masks = self.upscaled_masks(src, hyper, h, w)
        return masks, self.iou_prediction_head(iou_out)

    def upscaled_masks(self, src: torch.Tensor, hyper: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """src [M, h*w, C] (row-major pixels), hyper [M, K, C/8] -> logits [M, K, 4h, 4w].

        The two kernel-2, stride-2 transposed convolutions touch disjoint 2x2 output blocks, so
        each is one matrix product on channels-last pixels: [.., C_in] @ [C_in, 2*2*C_out].
        Pixels stay in (i, j, a, b, a', b') order, LayerNorm2d normalises the last (channel)
        axis in place, and only the K-channel result is reordered to (4i+2a+a', 4j+2b+b').
        Same arithmetic as ConvTranspose2d -> LayerNorm2d -> GELU -> ConvTranspose2d -> GELU
        -> hypernetwork product, without the channels-first transposes (the ONNX graph gets
        MatMuls in place of ConvTranspose, which onnxruntime runs ~2x faster here).
        """
        m = src.shape[0]
        up = self._stride2_transposed_conv(src, self.upscale_conv1)
        norm = self.upscale_layer_norm
        up = self.act(nn.functional.layer_norm(up, norm.normalized_shape, norm.weight, norm.bias, norm.eps))
        up = self.act(self._stride2_transposed_conv(up, self.upscale_conv2))
        k = hyper.shape[1]
        c8 = up.shape[-1]
        masks = hyper @ up.reshape(m, -1, c8).transpose(1, 2)  # [M, K, h*w*16]
        masks = masks.reshape(m, k, h, w, 2, 2, 2, 2).permute(0, 1, 2, 4, 6, 3, 5, 7)
        return masks.reshape(m, k, 4 * h, 4 * w)

    @staticmethod
    def _stride2_transposed_conv(x: torch.Tensor, conv: nn.ConvTranspose2d) -> torch.Tensor:
        """x [M, L, C_in] channels-last -> [M, L*4, C_out] (each pixel -> its 2x2 block, (a, b) order)."""
        c_in, c_out = conv.weight.shape[:2]
        weight = conv.weight.permute(0, 2, 3, 1).reshape(c_in, 4 * c_out)
        # bias repeated per (a, b) so it broadcasts over the last axis only; the product on 2-D
        # pixels lets onnxruntime fuse the bias into one Gemm (a 3-D MatMul keeps a separate Add)
        y = x.reshape(-1, c_in) @ weight + conv.bias.repeat(4)
        return y.reshape(x.shape[0], -1, c_out)
