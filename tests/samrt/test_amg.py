"""samrt.amg against transformers' SAM image processor, segment_anything.utils.amg and
pycocotools (test-only oracles), on random logits."""

from __future__ import annotations

import numpy as np
import pytest
from samrt import amg
from samrt.errors import InvalidInputError
from samrt.regions import remove_small_regions
from samrt.upscale import upscale_masks

torch = pytest.importorskip("torch")
meta_amg = pytest.importorskip("segment_anything.utils.amg")
hf_sam = pytest.importorskip("transformers.models.sam.image_processing_sam")
mask_utils = pytest.importorskip("pycocotools.mask")


def _blobs(count, height, width, seed=0):
    """Smooth random logits [count, height, width] (blob-shaped masks, some touching edges)."""
    coarse = np.random.default_rng(seed).normal(size=(count, 6, 6)).astype(np.float32) * 6
    return upscale_masks(coarse, (height, width), (height, width), (height, width))


@pytest.mark.parametrize("n", [1, 2, 7, 32])
def test_point_grid_matches_references(n):
    ours = amg.build_point_grid(n)
    np.testing.assert_allclose(ours, meta_amg.build_point_grid(n), atol=1e-12)
    np.testing.assert_allclose(ours, hf_sam._build_point_grid(n).numpy(), atol=1e-6)


@pytest.mark.parametrize("size", [(480, 640), (1500, 2250), (777, 333), (64, 64)])
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_crop_boxes_match_references(size, layers):
    ours, our_layers = amg.crop_boxes_for(size, layers, 512 / 1500)
    ref, ref_layers = meta_amg.generate_crop_boxes(size, layers, 512 / 1500)
    assert ours == ref and our_layers == ref_layers


def test_generate_crop_boxes_matches_transformers():
    image = np.random.default_rng(0).integers(0, 256, (300, 420, 3), dtype=np.uint8)
    ours = amg.generate_crop_boxes(image, 1024, crop_n_layers=1, points_per_crop=8)
    ref = hf_sam.SamImageProcessor().generate_crop_boxes(image, 1024, crop_n_layers=1, points_per_crop=8)
    np.testing.assert_array_equal(ours[0], ref[0].numpy())
    np.testing.assert_allclose(ours[1], ref[1].numpy(), atol=1e-4)
    assert all(np.array_equal(a, np.asarray(b).transpose(1, 2, 0) if np.asarray(b).shape[0] == 3 else b)
               for a, b in zip(ours[2], ref[2], strict=True))
    np.testing.assert_array_equal(ours[3], ref[3].numpy())


def test_stability_score_matches_references():
    logits = _blobs(6, 90, 70) * 0.5
    ours = amg.compute_stability_score(logits, 0.0, 1.0)
    np.testing.assert_allclose(ours, meta_amg.calculate_stability_score(torch.from_numpy(logits), 0.0, 1.0).numpy())
    np.testing.assert_allclose(ours, hf_sam._compute_stability_score(torch.from_numpy(logits), 0.0, 1.0).numpy())


def test_mask_to_box_matches_references_including_empty():
    masks = _blobs(5, 40, 60) > 1.0
    masks[0] = False
    masks[1] = True
    ours = amg.batched_mask_to_box(masks)
    np.testing.assert_array_equal(ours, meta_amg.batched_mask_to_box(torch.from_numpy(masks)).numpy())
    np.testing.assert_array_equal(ours, hf_sam._batched_mask_to_box(torch.from_numpy(masks)).numpy())


def test_rle_matches_references_and_round_trips():
    masks = _blobs(6, 37, 53) > 0.5
    masks[0] = False
    masks[1] = True
    ours = amg.mask_to_rle(masks)
    assert ours == meta_amg.mask_to_rle_pytorch(torch.from_numpy(masks))
    assert ours == hf_sam._mask_to_rle(torch.from_numpy(masks))
    for rle, mask in zip(ours, masks, strict=True):
        np.testing.assert_array_equal(amg.rle_to_mask(rle), mask)
        assert amg.area_from_rle(rle) == mask.sum()
        coco = amg.coco_encode_rle(rle)
        ref = meta_amg.coco_encode_rle(rle)
        assert coco == ref
        np.testing.assert_array_equal(mask_utils.decode(coco).astype(bool), mask)
        assert amg.coco_decode_counts(coco["counts"]) == rle["counts"]


def test_rle_refuses_counts_of_the_wrong_total():
    with pytest.raises(InvalidInputError, match="rle"):
        amg.rle_to_mask({"size": [2, 2], "counts": [1, 1]})


def test_nms_matches_torchvision():
    from torchvision.ops import batched_nms

    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 100, (200, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(5, 60, (200, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(size=200).astype(np.float32)
    for thresh in (0.3, 0.7):
        ref = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.zeros(200), thresh).numpy()
        np.testing.assert_array_equal(amg.nms(boxes, scores, thresh), ref)


def test_filter_masks_and_nms_match_transformers():
    rng = np.random.default_rng(5)
    logits = _blobs(12, 120, 160, seed=5).reshape(4, 3, 120, 160)
    scores = rng.uniform(0.5, 1.0, (4, 3)).astype(np.float32)
    crop_box = [40, 30, 200, 150]
    proc = hf_sam.SamImageProcessor()
    kwargs = dict(pred_iou_thresh=0.6, stability_score_thresh=0.5)
    ref = proc.filter_masks(torch.from_numpy(logits), torch.from_numpy(scores), (300, 400), crop_box, **kwargs)
    ours = amg.filter_masks(logits, scores, (300, 400), crop_box, **kwargs)
    assert ours[0] == ref[0]
    np.testing.assert_allclose(ours[1], ref[1].numpy())
    np.testing.assert_array_equal(ours[2], ref[2].numpy())
    ref_pp = proc.post_process_for_mask_generation(ref[0], ref[1], ref[2], 0.5)
    ours_pp = amg.post_process_for_mask_generation(ours[0], ours[1], ours[2], 0.5)
    assert ours_pp[2] == ref_pp[2]
    np.testing.assert_array_equal(ours_pp[3], ref_pp[3].numpy())
    for a, b in zip(ours_pp[0], ref_pp[0], strict=True):
        np.testing.assert_array_equal(a, b.numpy())


@pytest.mark.parametrize("mode", ["holes", "islands"])
@pytest.mark.parametrize("area", [2, 30, 400])
def test_remove_small_regions_matches_segment_anything(mode, area):
    pytest.importorskip("cv2")  # segment_anything's version needs OpenCV; ours does not
    for seed in range(8):
        mask = _blobs(1, 70, 90, seed=seed)[0] > 0.8
        ours, changed = remove_small_regions(mask, area, mode)
        ref, ref_changed = meta_amg.remove_small_regions(mask, area, mode)
        assert changed == ref_changed
        np.testing.assert_array_equal(ours, ref)


def test_bad_helper_input_is_refused():
    with pytest.raises(InvalidInputError, match="points_per_side"):
        amg.build_point_grid(0)
    with pytest.raises(InvalidInputError, match="crop_n_layers"):
        amg.crop_boxes_for((10, 10), -1)
    with pytest.raises(InvalidInputError, match="mode"):
        remove_small_regions(np.zeros((3, 3), bool), 1, "edges")
