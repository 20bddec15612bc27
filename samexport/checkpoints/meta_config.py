"""The architecture of a Meta ``segment_anything`` checkpoint, read from its tensor shapes."""

from __future__ import annotations

import re

import torch
from samrt.errors import CheckpointError, ConfigError

from ..config import SamConfig, SamMaskDecoderConfig, SamPromptEncoderConfig, SamVisionConfig

__all__ = ["infer_config_from_meta"]


def infer_config_from_meta(state: dict[str, torch.Tensor]) -> SamConfig:
    """Infer the architecture of a ``segment_anything`` state dict from its tensor shapes.

    Everything is read from shapes except the mask decoder's head count, which no tensor
    reveals (8 in every released SAM model), and its LayerNorm eps, set to segment_anything's
    1e-5 so that a Meta checkpoint reproduces Meta's outputs (transformers uses 1e-6, a
    difference of ~1e-3 in mask logits on the same weights).
    """
    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise CheckpointError(f"not a SAM checkpoint: tensor {key!r} is missing")
        return tuple(state[key].shape)

    hidden, channels, patch, _ = shape("image_encoder.patch_embed.proj.weight")
    grid = shape("image_encoder.pos_embed")[1] if "image_encoder.pos_embed" in state else None
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k)))
    grid = grid or 64
    use_rel_pos = "image_encoder.blocks.0.attn.rel_pos_h" in state
    global_layers, window, heads = [], 14, max(1, hidden // 64)
    if use_rel_pos:
        for i in range(depth):
            length, head_dim = shape(f"image_encoder.blocks.{i}.attn.rel_pos_h")
            heads = hidden // head_dim
            if length == 2 * grid - 1:
                global_layers.append(i)
            else:
                window = (length + 1) // 2
    vision = SamVisionConfig(
        hidden_size=hidden,
        num_channels=channels,
        patch_size=patch,
        image_size=grid * patch,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        window_size=window,
        global_attn_indexes=tuple(global_layers),
        mlp_dim=shape("image_encoder.blocks.0.mlp.lin1.weight")[0],
        output_channels=shape("image_encoder.neck.0.weight")[0],
        num_pos_feats=shape("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix")[1],
        qkv_bias="image_encoder.blocks.0.attn.qkv.bias" in state,
        use_abs_pos="image_encoder.pos_embed" in state,
        use_rel_pos=use_rel_pos,
    )
    prompt_hidden = shape("prompt_encoder.not_a_point_embed.weight")[1]
    prompt = SamPromptEncoderConfig(
        hidden_size=prompt_hidden,
        image_size=grid * patch,
        patch_size=patch,
        mask_input_channels=shape("prompt_encoder.mask_downscaling.3.weight")[0],
    )
    dec_layers = 1 + max(
        int(m.group(1)) for k in state if (m := re.match(r"mask_decoder\.transformer\.layers\.(\d+)\.", k))
    )
    internal = shape("mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight")[0]
    iou_depth = 1 + max(
        int(m.group(1)) for k in state if (m := re.match(r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\.", k))
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=prompt_hidden,
        mlp_dim=shape("mask_decoder.transformer.layers.0.mlp.lin1.weight")[0],
        num_hidden_layers=dec_layers,
        num_attention_heads=8,
        attention_downsample_rate=prompt_hidden // internal,
        num_multimask_outputs=shape("mask_decoder.mask_tokens.weight")[0] - 1,
        iou_head_depth=iou_depth,
        iou_head_hidden_dim=shape("mask_decoder.iou_prediction_head.layers.0.weight")[0],
        # segment_anything's two-way blocks use nn.LayerNorm's default eps; transformers 1e-6.
        layer_norm_eps=1e-5,
    )
    try:
        return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    except ConfigError as exc:
        raise CheckpointError(f"the tensor shapes describe no valid SAM ({exc})") from exc
