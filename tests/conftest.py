"""Shared fixtures: tiny random SAM models written in both checkpoint formats, and oracles.

The oracles (transformers' SamModel, segment_anything's Sam) are loaded with the very same
weights as ours: transformers from the directory our save_pretrained writes, segment_anything
from the Meta-format state dict our hf_to_meta writes.
"""

from __future__ import annotations

import functools

import pytest
import torch

from samexport.checkpoints.naming import hf_to_meta
from samexport.checkpoints.random_weights import random_model
from samexport.config import SamConfig, SamMaskDecoderConfig, SamPromptEncoderConfig, SamVisionConfig, preset

# A second tiny architecture: other widths, depth, window size, global layers, heads.
TINY_WIDE = SamConfig(
    vision_config=SamVisionConfig(
        hidden_size=48, num_hidden_layers=3, num_attention_heads=3, window_size=5,
        global_attn_indexes=(0, 2), output_channels=64, num_pos_feats=32, mlp_dim=96,
    ),
    prompt_encoder_config=SamPromptEncoderConfig(hidden_size=64, mask_input_channels=16),
    mask_decoder_config=SamMaskDecoderConfig(
        hidden_size=64, mlp_dim=128, num_hidden_layers=1, num_attention_heads=4,
        iou_head_hidden_dim=48, iou_head_depth=4,
    ),
)
TINY_CONFIGS = {"tiny": preset("tiny"), "tiny_wide": TINY_WIDE}


@pytest.fixture(scope="session", params=sorted(TINY_CONFIGS))
def tiny_config(request) -> SamConfig:
    return TINY_CONFIGS[request.param]


@pytest.fixture(scope="session")
def tiny_model(tiny_config):
    return random_model(tiny_config, seed=7)


@pytest.fixture(scope="session")
def hf_dir(tiny_model, tmp_path_factory):
    directory = tmp_path_factory.mktemp("hf")
    tiny_model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def hf_oracle(hf_dir):
    transformers = pytest.importorskip("transformers")
    return transformers.SamModel.from_pretrained(str(hf_dir)).eval()


def build_meta_sam(config: SamConfig):
    """segment_anything's Sam with the architecture of ``config`` (random weights)."""
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    v, pe, md = config.vision_config, config.prompt_encoder_config, config.mask_decoder_config
    grid = v.embedding_size
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=v.num_hidden_layers, embed_dim=v.hidden_size, img_size=v.image_size,
            mlp_ratio=v.resolved_mlp_dim / v.hidden_size,
            norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=v.num_attention_heads, patch_size=v.patch_size, qkv_bias=True,
            use_rel_pos=True, global_attn_indexes=v.global_attn_indexes,
            window_size=v.window_size, out_chans=v.output_channels,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=pe.hidden_size, image_embedding_size=(grid, grid),
            input_image_size=(v.image_size, v.image_size), mask_in_chans=pe.mask_input_channels,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=md.num_multimask_outputs,
            transformer=TwoWayTransformer(
                depth=md.num_hidden_layers, embedding_dim=md.hidden_size,
                mlp_dim=md.mlp_dim, num_heads=md.num_attention_heads,
            ),
            transformer_dim=md.hidden_size, iou_head_depth=md.iou_head_depth,
            iou_head_hidden_dim=md.iou_head_hidden_dim,
        ),
    ).eval()


@pytest.fixture(scope="session")
def meta_checkpoint(tiny_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("meta") / "sam_tiny.pth"
    torch.save(hf_to_meta(tiny_model.state_dict()), path)
    return path


@pytest.fixture(scope="session")
def tiny_engine(tiny_model, tmp_path_factory):
    """The engine directory exported from ``tiny_model`` (each tiny config), shared read-only by
    every module that needs it: torch's exporter takes ~15-35 s per export on 2 cores."""
    from samexport.export import export_model

    return export_model(tiny_model, tmp_path_factory.mktemp("engines") / "tiny", source="test", source_sha256=None)


@pytest.fixture(scope="session")
def random_tiny_engine(tmp_path_factory):
    """One ``random:tiny`` engine directory (exactly what ``samexport export --model random:tiny``
    writes), shared read-only: tests that damage an engine copy it first."""
    from samexport.checkpoints.sources import load_source
    from samexport.export import export_model

    model, digest = load_source("random:tiny")
    return export_model(model, tmp_path_factory.mktemp("random_tiny") / "tiny", source="random:tiny",
                        source_sha256=digest)
