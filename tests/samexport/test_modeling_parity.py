"""Our SamModel against transformers' SamModel and segment_anything's Sam, same weights."""

from __future__ import annotations

import pytest
import torch

from samexport.checkpoints.random_weights import random_model
from samexport.config import preset
from samexport.modeling.sam import SamModel

TOL = 1e-4


def _prompts(batch: int, point_batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    points = torch.rand(batch, point_batch, 3, 2, generator=g) * 1024
    labels = torch.tensor([1, 0, -10]).repeat(batch, point_batch, 1)  # HF's ragged pad label
    labels[:, 0, 2] = 1
    x0y0 = torch.rand(batch, point_batch, 2, generator=g) * 500
    boxes = torch.cat([x0y0, x0y0 + 100 + torch.rand(batch, point_batch, 2, generator=g) * 400], dim=-1)
    masks = torch.randn(batch, 1, 256, 256, generator=g) * 4
    return {"points": points, "labels": labels, "boxes": boxes, "masks": masks}


PROMPT_KINDS = {
    "points": lambda p: dict(input_points=p["points"], input_labels=p["labels"]),
    "boxes": lambda p: dict(input_boxes=p["boxes"]),
    "points+boxes": lambda p: dict(input_points=p["points"], input_labels=p["labels"], input_boxes=p["boxes"]),
    "points+mask": lambda p: dict(input_points=p["points"], input_labels=p["labels"], input_masks=p["masks"]),
    "default_labels": lambda p: dict(input_points=p["points"]),
    "none": lambda p: {},
}


@pytest.fixture(scope="module")
def pixels():
    return torch.randn(2, 3, 1024, 1024, generator=torch.Generator().manual_seed(3))


@pytest.fixture(scope="module")
def embeddings_pair(tiny_model, hf_oracle, pixels):
    with torch.no_grad():
        return tiny_model.get_image_embeddings(pixels), hf_oracle.get_image_embeddings(pixels)


def test_image_embeddings_match_transformers(embeddings_pair):
    ours, theirs = embeddings_pair
    assert ours.shape == theirs.shape
    assert ours.std() > 0.1  # the random weights give a real signal, not a constant
    assert (ours - theirs).abs().max() <= TOL


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("kind", sorted(PROMPT_KINDS))
@pytest.mark.parametrize("point_batch", [1, 3])
def test_decoder_matches_transformers(tiny_model, hf_oracle, embeddings_pair, kind, multimask, point_batch):
    ours_emb, _ = embeddings_pair
    kwargs = PROMPT_KINDS[kind](_prompts(2, point_batch))
    with torch.no_grad():
        ours = tiny_model(image_embeddings=ours_emb, multimask_output=multimask, **kwargs)
        theirs = hf_oracle(image_embeddings=ours_emb, multimask_output=multimask, **kwargs)
    assert ours.pred_masks.shape == theirs.pred_masks.shape
    assert ours.iou_scores.shape == theirs.iou_scores.shape
    assert ours.pred_masks.std() > 0.05
    assert (ours.pred_masks - theirs.pred_masks).abs().max() <= TOL
    assert (ours.iou_scores - theirs.iou_scores).abs().max() <= TOL


def test_full_forward_from_pixels_matches_transformers(tiny_model, hf_oracle, pixels):
    prompts = _prompts(2, 2, seed=5)
    kwargs = dict(input_points=prompts["points"], input_labels=prompts["labels"])
    with torch.no_grad():
        ours = tiny_model(pixel_values=pixels, **kwargs)
        theirs = hf_oracle(pixel_values=pixels, **kwargs)
    assert (ours.pred_masks - theirs.pred_masks).abs().max() <= TOL
    assert (ours.iou_scores - theirs.iou_scores).abs().max() <= TOL


def test_meta_checkpoint_matches_segment_anything(meta_checkpoint, tiny_config):
    from tests.conftest import build_meta_sam

    pytest.importorskip("segment_anything")
    model = SamModel.from_pretrained(meta_checkpoint)  # config inferred from tensor shapes
    meta = build_meta_sam(model.config)
    meta.load_state_dict(torch.load(meta_checkpoint, weights_only=True), strict=True)
    pixels = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(11))
    g = torch.Generator().manual_seed(12)
    points = torch.rand(4, 2, 2, generator=g) * 1024
    labels = torch.tensor([[1, 0]] * 4)
    boxes = torch.tensor([[10.0, 20.0, 400.0, 500.0]] * 4) + torch.rand(4, 1, generator=g) * 300
    masks = torch.randn(4, 1, 256, 256, generator=g)
    with torch.no_grad():
        ours_emb = model.get_image_embeddings(pixels)
        meta_emb = meta.image_encoder(pixels)
        assert (ours_emb - meta_emb).abs().max() <= TOL
        for use_boxes, use_masks in [(False, False), (True, False), (True, True)]:
            sparse, dense = meta.prompt_encoder(
                points=(points, labels), boxes=boxes if use_boxes else None,
                masks=masks if use_masks else None,
            )
            meta_masks, meta_iou = meta.mask_decoder(
                image_embeddings=meta_emb, image_pe=meta.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True,
            )
            # Meta decodes one image with 4 prompts; ours takes them as transformers' point batch.
            # (mask input: one per prompt, so decode per prompt to keep Meta's pairing.)
            for i in range(4):
                out = model(
                    image_embeddings=ours_emb,
                    input_points=points[i][None, None],
                    input_labels=labels[i][None, None],
                    input_boxes=boxes[i][None, None] if use_boxes else None,
                    input_masks=masks[i][None] if use_masks else None,
                )
                assert (out.pred_masks[0, 0] - meta_masks[i]).abs().max() <= TOL
                assert (out.iou_scores[0, 0] - meta_iou[i]).abs().max() <= TOL


@pytest.mark.slow
def test_vit_b_shapes_match_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    model = random_model(preset("vit_b"), seed=1)
    model.save_pretrained(tmp_path)
    hf = transformers.SamModel.from_pretrained(str(tmp_path)).eval()
    pixels = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(0))
    prompts = _prompts(1, 2)
    kwargs = dict(input_points=prompts["points"], input_labels=prompts["labels"], input_boxes=prompts["boxes"])
    with torch.no_grad():
        ours_emb = model.get_image_embeddings(pixels)
        theirs_emb = hf.get_image_embeddings(pixels)
        assert ours_emb.shape == (1, 256, 64, 64)
        assert (ours_emb - theirs_emb).abs().max() <= TOL
        ours = model(image_embeddings=ours_emb, **kwargs)
        theirs = hf(image_embeddings=ours_emb, **kwargs)
    assert (ours.pred_masks - theirs.pred_masks).abs().max() <= TOL
    assert (ours.iou_scores - theirs.iou_scores).abs().max() <= TOL
