"""Export wrappers: the encoder graph and the dynamic-prompt decoder graph.

The contract (names, dtypes, dynamic axes) is ``samrt.spec``. The decoder is branch-free:
labels select embeddings with ``where`` / masks, and ``has_mask_input`` blends the mask
embedding with the no-mask embedding arithmetically. No shape depends on data values.
"""

from __future__ import annotations

import torch
from torch import nn

from .modeling.sam import SamModel


class EncoderGraph(nn.Module):
    """pixel_values float32 [B, 3, 1024, 1024] -> image_embeddings float32 [B, 256, 64, 64]."""

    def __init__(self, model: SamModel) -> None:
        super().__init__()
        self.vision_encoder = model.vision_encoder

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vision_encoder(pixel_values)


class DecoderGraph(nn.Module):
    """One image, N prompts of P points each, all four mask tokens out.

    Inputs: image_embeddings f32 [1, C, g, g]; input_points f32 [N, P, 2] (x, y in the resized
    1024 frame); input_labels i32 [N, P] in {1, 0, 2, 3, -1, -10}; mask_input f32
    [N, 1, 4g, 4g]; has_mask_input f32 [N] (0 or 1).
    Outputs: iou_scores f32 [N, K+1]; low_res_masks f32 [N, K+1, 4g, 4g] (token 0 = single-mask
    output, tokens 1..K = multimask outputs).
    """

    def __init__(self, model: SamModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        image_embeddings: torch.Tensor,
        input_points: torch.Tensor,
        input_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        prompt = self.model.prompt_encoder
        sparse = prompt.embed_points(input_points, input_labels)
        has = has_mask_input.reshape(-1, 1, 1, 1)
        no_mask = prompt.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = has * prompt.embed_masks(mask_input) + (1.0 - has) * no_mask
        masks, iou = self.model.decode(image_embeddings, sparse, dense)
        return iou, masks
