"""Stress weights: random SAM weights whose residual stream carries FP16-hostile outliers.

Real SAM checkpoints (ViT-H above all) carry a few residual-stream channels whose activations
sit in the thousands at every token; their LayerNorms rescale them with small scales and give
the other channels the matching large ones. Those values fit in FP16 (max 65504), but their
squared deviations (a LayerNorm's variance) do not: an FP16 LayerNorm turns them into inf and
then NaN (segment-anything #540, #696). Plain random weights (:func:`init_random_weights`) keep
every activation near unit scale and so cannot show that failure.

:func:`init_stress_weights` starts from the plain random weights and adds
``OUTLIER_CHANNELS`` channels at ``OUTLIER_MAGNITUDE`` to the vision encoder's absolute position
table (so every token carries them through every block). Every LayerNorm of the encoder's blocks
gets scales and shifts that undo the outliers' effect on the statistics (the other channels
leave the norm as they entered it, the outliers near 1), and the neck's first 1x1 convolution ignores the outlier
channels, as a trained network learns to. In FP32 the model behaves like the plain random one;
in FP16 without FP32 LayerNorms it produces NaN. Source name: ``random:<preset>-stress``.
"""

from __future__ import annotations

import math

import torch

from .checkpoints import init_random_weights

OUTLIER_CHANNELS = 2
OUTLIER_MAGNITUDE = 2000.0  # squared deviations ~4e6, far beyond FP16's 65504
STRESS_SUFFIX = "-stress"


def outlier_channels(hidden_size: int, seed: int) -> list[int]:
    """The residual channels that carry the outliers (seeded, distinct)."""
    generator = torch.Generator().manual_seed(seed + 7919)
    return sorted(torch.randperm(hidden_size, generator=generator)[:OUTLIER_CHANNELS].tolist())


def init_stress_weights(model, seed: int) -> None:
    """Plain random weights (:func:`init_random_weights`) plus the outliers described above."""
    init_random_weights(model, seed)
    encoder = model.vision_encoder
    hidden = encoder.pos_embed.shape[-1]
    channels = outlier_channels(hidden, seed)
    normal = [c for c in range(hidden) if c not in channels]
    share = len(channels) / hidden
    # standard deviation over channels of one token: outliers at M, the rest ~unit
    spread = math.sqrt(OUTLIER_MAGNITUDE**2 * share * (1 - share) + (1 - share))
    normalised_outlier = OUTLIER_MAGNITUDE * (1 - share) / spread
    with torch.no_grad():
        encoder.pos_embed[..., channels] += OUTLIER_MAGNITUDE
        for layer in encoder.layers:
            for norm in (layer.layer_norm1, layer.layer_norm2):
                norm.weight[normal] *= spread
                norm.bias[normal] += OUTLIER_MAGNITUDE * share  # give back the mean the outliers shift
                norm.weight[channels] /= normalised_outlier
                norm.bias[channels] = 0.0
        encoder.neck.conv1.weight[:, channels] = 0.0


def split_stress_name(name: str) -> tuple[str, bool]:
    """``"vit_b-stress"`` -> ("vit_b", True); ``"vit_b"`` -> ("vit_b", False)."""
    if name.endswith(STRESS_SUFFIX):
        return name[: -len(STRESS_SUFFIX)], True
    return name, False
