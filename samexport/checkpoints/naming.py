"""Parameter names: Meta ``segment_anything`` <-> transformers (and ours)."""

from __future__ import annotations

import re

import torch

__all__ = ["meta_to_hf", "hf_to_meta", "TIED_ALIAS", "META_IGNORED"]

TIED_ALIAS = "prompt_encoder.shared_embedding.positional_embedding"  # transformers' second name of one tensor
META_IGNORED = ("pixel_mean", "pixel_std")  # Meta buffers that are preprocessing constants, not weights

# (segment_anything prefix, transformers prefix); {i} and {j} stand for layer numbers. The
# first matching row wins, so specific rows come before general ones.
_NAME_MAP: list[tuple[str, str]] = [
    ("image_encoder.patch_embed.proj.", "vision_encoder.patch_embed.projection."),
    ("image_encoder.pos_embed", "vision_encoder.pos_embed"),
    ("image_encoder.blocks.{i}.norm{j}.", "vision_encoder.layers.{i}.layer_norm{j}."),
    ("image_encoder.blocks.{i}.", "vision_encoder.layers.{i}."),
    ("image_encoder.neck.0.", "vision_encoder.neck.conv1."),
    ("image_encoder.neck.1.", "vision_encoder.neck.layer_norm1."),
    ("image_encoder.neck.2.", "vision_encoder.neck.conv2."),
    ("image_encoder.neck.3.", "vision_encoder.neck.layer_norm2."),
    ("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
     "shared_image_embedding.positional_embedding"),
    ("prompt_encoder.point_embeddings.{i}.", "prompt_encoder.point_embed.{i}."),
    ("prompt_encoder.mask_downscaling.0.", "prompt_encoder.mask_embed.conv1."),
    ("prompt_encoder.mask_downscaling.1.", "prompt_encoder.mask_embed.layer_norm1."),
    ("prompt_encoder.mask_downscaling.3.", "prompt_encoder.mask_embed.conv2."),
    ("prompt_encoder.mask_downscaling.4.", "prompt_encoder.mask_embed.layer_norm2."),
    ("prompt_encoder.mask_downscaling.6.", "prompt_encoder.mask_embed.conv3."),
    ("mask_decoder.transformer.layers.{i}.norm{j}.", "mask_decoder.transformer.layers.{i}.layer_norm{j}."),
    ("mask_decoder.transformer.norm_final_attn.", "mask_decoder.transformer.layer_norm_final_attn."),
    ("mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
]
_META_FFN = re.compile(
    r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.(\d+)\.(.*)$"
)
_HF_FFN = re.compile(
    r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))"
    r"\.(proj_in|proj_out|layers\.(\d+))\.(.*)$"
)


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{j\}", r"(?P<j>\d+)")
    return re.compile("^" + pattern + ("" if template.endswith(".") else "$"))


_META_TO_HF = [(_template_regex(meta), hf) for meta, hf in _NAME_MAP]
_HF_TO_META = [(_template_regex(hf), meta) for meta, hf in _NAME_MAP]


def _rename(key: str, table: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, template in table:
        match = pattern.match(key)
        if match:
            return template.format(**match.groupdict()) + key[match.end():]
    return key


def _ffn_depths(keys: list[str], pattern: re.Pattern[str], layer_group: int) -> dict[str, int]:
    """Per FFN prefix, 1 + the highest layer index found in ``layer_group``."""
    depths: dict[str, int] = {}
    for key in keys:
        match = pattern.match(key)
        if match and match.group(layer_group) is not None:
            depths[match.group(1)] = max(depths.get(match.group(1), 0), int(match.group(layer_group)) + 1)
    return depths


def meta_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a ``segment_anything`` state dict to transformers' (and our) parameter names."""
    depths = _ffn_depths(list(state), _META_FFN, 2)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key in META_IGNORED:
            continue
        match = _META_FFN.match(key)
        if match:
            prefix, index, rest = match.group(1), int(match.group(2)), match.group(3)
            last = depths[prefix] - 1
            part = "proj_in" if index == 0 else "proj_out" if index == last else f"layers.{index - 1}"
            out[f"{prefix}.{part}.{rest}"] = tensor
        else:
            out[_rename(key, _META_TO_HF)] = tensor
    return out


def hf_to_meta(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`meta_to_hf`: our / transformers' names to ``segment_anything``'s."""
    middle = _ffn_depths(list(state), _HF_FFN, 3)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key == TIED_ALIAS:
            continue
        match = _HF_FFN.match(key)
        if match:
            prefix, part, rest = match.group(1), match.group(2), match.group(4)
            if part == "proj_in":
                index = 0
            elif part == "proj_out":
                index = middle.get(prefix, 0) + 1
            else:
                index = int(match.group(3)) + 1
            out[f"{prefix}.layers.{index}.{rest}"] = tensor
        else:
            out[_rename(key, _HF_TO_META)] = tensor
    return out


