"""The prompt encoder: sparse tokens for points and box corners, a dense embedding for masks.

Point labels (the graph contract of ``samrt.spec``):
  1 foreground, 0 background, 2 / 3 top-left / bottom-right box corner,
  -1 "not a point" (SAM's pad token: the learned ``not_a_point_embed``),
  -10 ignored pad (transformers' ragged-batch pad: an all-zero token).
All label handling is arithmetic (``torch.where``), never data-dependent control flow.
"""

from __future__ import annotations

import torch
from samrt import spec
from torch import nn

from ..config import SamPromptEncoderConfig
from .common import LayerNorm2d, activation
from .positional_encoding import RandomFourierEmbedding


class MaskEmbedding(nn.Module):
    """Low-res mask logits [M, 1, 4g, 4g] -> dense embedding [M, hidden, g, g]."""

    def __init__(self, config: SamPromptEncoderConfig) -> None:
        super().__init__()
        inner = config.mask_input_channels // 4
        self.conv1 = nn.Conv2d(1, inner, kernel_size=2, stride=2)
        self.layer_norm1 = LayerNorm2d(inner, eps=config.layer_norm_eps)
        self.conv2 = nn.Conv2d(inner, config.mask_input_channels, kernel_size=2, stride=2)
        self.layer_norm2 = LayerNorm2d(config.mask_input_channels, eps=config.layer_norm_eps)
        self.conv3 = nn.Conv2d(config.mask_input_channels, config.hidden_size, kernel_size=1)
        self.act = activation(config.hidden_act)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        x = self.act(self.layer_norm1(self.conv1(masks)))
        x = self.act(self.layer_norm2(self.conv2(x)))
        return self.conv3(x)


class PromptEncoder(nn.Module):
    """Embeds points / box corners (sparse) and mask inputs (dense)."""

    def __init__(self, config: SamPromptEncoderConfig, *, shared_embedding: RandomFourierEmbedding) -> None:
        super().__init__()
        self.config = config
        # Shared with SamModel.shared_image_embedding (not registered twice).
        self._shared = [shared_embedding]
        self.mask_embed = MaskEmbedding(config)
        self.no_mask_embed = nn.Embedding(1, config.hidden_size)
        self.point_embed = nn.ModuleList(nn.Embedding(1, config.hidden_size) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, config.hidden_size)

    @property
    def shared_embedding(self) -> RandomFourierEmbedding:
        return self._shared[0]

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Sparse tokens for labelled points.

        coords: float32 [..., P, 2], (x, y) in the resized input frame (0..image_size).
        labels: integer or float [..., P], values in {1, 0, 2, 3, -1, -10}.
        Returns float32 [..., P, hidden].
        """
        normalised = (coords + 0.5) / float(self.config.image_size)
        tokens = self.shared_embedding(normalised)
        lab = labels.unsqueeze(-1)
        tokens = torch.where(lab == spec.LABEL_NOT_A_POINT, self.not_a_point_embed.weight[0], tokens)
        tokens = torch.where(lab == spec.LABEL_IGNORED_PAD, torch.zeros_like(tokens), tokens)
        for value, embed in enumerate(self.point_embed):
            tokens = tokens + (lab == value).to(tokens.dtype) * embed.weight[0]
        return tokens

    def embed_masks(self, masks: torch.Tensor) -> torch.Tensor:
        """masks: float32 [M, 1, 4g, 4g] low-res logits -> [M, hidden, g, g]."""
        return self.mask_embed(masks)

    def no_mask_dense(self, batch: int) -> torch.Tensor:
        """The dense embedding used when no mask is given: [batch, hidden, g, g]."""
        g = self.config.image_embedding_size
        return self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, g, g)
