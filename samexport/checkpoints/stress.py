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
gets scales and shifts that undo the outliers' effect on the statistics (the ordinary channels
leave the norm as a plain LayerNorm would give them, the outliers near 1), and the neck's first
1x1 convolution ignores the outlier channels, as a trained network learns to. In FP32 the model
behaves like the plain random one; in FP16 without FP32 LayerNorms it produces NaN.
Source name: ``random:<preset>-stress``.
"""

from __future__ import annotations

import torch

from .random_weights import init_random_weights

OUTLIER_CHANNELS = 2
OUTLIER_MAGNITUDE = 2000.0  # squared deviations ~4e6, far beyond FP16's 65504
STRESS_SUFFIX = "-stress"


def outlier_channels(hidden_size: int, seed: int) -> list[int]:
    """The residual channels that carry the outliers (seeded, distinct)."""
    generator = torch.Generator().manual_seed(seed + 7919)
    return sorted(torch.randperm(hidden_size, generator=generator)[:OUTLIER_CHANNELS].tolist())


def init_stress_weights(model, seed: int) -> None:
    """Plain random weights (:func:`init_random_weights`) plus the outliers described above.

    The LayerNorm scales and shifts are calibrated in one forward pass on a seeded noise image:
    each block's norms get, just before they run, the scale and shift that make their output on
    the ordinary channels what a plain LayerNorm over those channels alone would give. Without
    that the ordinary channels leave each norm unnormalised, grow block by block, and the model
    becomes chaotic (ViT-B: FP32 and FP64 disagree by 4 in the embeddings).
    """
    init_random_weights(model, seed)
    encoder = model.vision_encoder
    hidden = encoder.pos_embed.shape[-1]
    channels = outlier_channels(hidden, seed)
    normal = [c for c in range(hidden) if c not in channels]

    def calibrate(norm, inputs) -> None:
        x = inputs[0].detach().double().reshape(-1, hidden)
        mean, std = x.mean(-1), (x.var(-1, unbiased=False) + norm.eps).sqrt()
        ordinary = x[:, normal]
        mean_n, std_n = ordinary.mean(-1), (ordinary.var(-1, unbiased=False) + norm.eps).sqrt()
        outlier = ((x[:, channels] - mean[:, None]) / std[:, None]).abs().mean()
        # gamma (x - mean) / std + beta == (x - mean_n) / std_n on the ordinary channels
        norm.weight[normal] = float((std / std_n).mean())
        norm.bias[normal] = float(((mean - mean_n) / std_n).mean())
        norm.weight[channels] = float(1.0 / outlier)
        norm.bias[channels] = 0.0

    with torch.no_grad():
        encoder.pos_embed[..., channels] += OUTLIER_MAGNITUDE
        encoder.neck.conv1.weight[:, channels] = 0.0
        hooks = [norm.register_forward_pre_hook(calibrate)
                 for layer in encoder.layers for norm in (layer.layer_norm1, layer.layer_norm2)]
        try:
            size = model.config.vision_config.image_size
            generator = torch.Generator().manual_seed(seed + 104729)
            encoder(torch.randn(1, model.config.vision_config.num_channels, size, size, generator=generator))
        finally:
            for hook in hooks:
                hook.remove()


def split_stress_name(name: str) -> tuple[str, bool]:
    """``"vit_b-stress"`` -> ("vit_b", True); ``"vit_b"`` -> ("vit_b", False)."""
    if name.endswith(STRESS_SUFFIX):
        return name[: -len(STRESS_SUFFIX)], True
    return name, False
