"""SamRuntime.generate against segment_anything's SamAutomaticMaskGenerator and transformers'
mask-generation pipeline, on the same random weights (test-only oracles)."""

from __future__ import annotations

import numpy as np
import pytest
from samrt import SamRuntime
from samrt.amg import rle_to_mask
from samrt.errors import InvalidInputError

torch = pytest.importorskip("torch")
sa = pytest.importorskip("segment_anything")
pytest.importorskip("cv2")

# Thresholds off, so random weights keep masks and every filter step is exercised on real data.
OPEN = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0)


def _match(ours, ref):
    """Pair records by mask IoU; returns [(ours, ref, iou)] for every reference mask."""
    def mask(r):
        seg = r["segmentation"]
        return rle_to_mask(seg) if isinstance(seg, dict) else seg

    ours_masks = [mask(r) for r in ours]
    pairs = []
    for r in ref:
        m = mask(r)
        ious = [(m & o).sum() / max((m | o).sum(), 1) for o in ours_masks]
        best = int(np.argmax(ious))
        pairs.append((ours[best], r, ious[best]))
    return pairs


def _check_parity(ours, ref):
    assert len(ref) > 0, "thresholds left no masks: the comparison would prove nothing"
    assert len(ours) == len(ref)
    for o, r, iou in _match(ours, ref):
        assert iou >= 0.99
        assert abs(o["predicted_iou"] - r["predicted_iou"]) <= 1e-4
        assert abs(o["stability_score"] - r["stability_score"]) <= 1e-3
        assert o["crop_box"] == list(r["crop_box"])
        np.testing.assert_allclose(o["point_coords"], r["point_coords"], atol=1e-6)
        np.testing.assert_allclose(o["bbox"], r["bbox"], atol=1)


@pytest.mark.parametrize("crop_n_layers", [0, 1])
def test_generate_matches_segment_anything(meta_pair, photo, crop_n_layers):
    runtime, meta = meta_pair
    kwargs = dict(points_per_side=6, points_per_batch=16, crop_n_layers=crop_n_layers, **OPEN)
    ref = sa.SamAutomaticMaskGenerator(meta, output_mode="uncompressed_rle", **kwargs).generate(photo)
    ours = runtime.generate(photo, output_mode="uncompressed_rle", **kwargs)
    _check_parity(ours, ref)


def test_generate_matches_segment_anything_mask_by_mask(meta_pair, photo):
    """Random weights give noise-like masks whose boxes all cover the image, so NMS keeps one:
    with box NMS off (threshold 1.0) every mask is compared, before and after an IoU filter."""
    runtime, meta = meta_pair
    kwargs = dict(points_per_side=6, points_per_batch=16, box_nms_thresh=1.0, **OPEN)
    ref = sa.SamAutomaticMaskGenerator(meta, output_mode="uncompressed_rle", **kwargs).generate(photo)
    ours = runtime.generate(photo, output_mode="uncompressed_rle", **kwargs)
    assert len(ref) == 6 * 6 * 3
    _check_parity(ours, ref)
    scores = np.array([r["predicted_iou"] for r in ref])
    assert (scores > 0).sum() >= 2  # the filter only acts for a positive threshold
    # A threshold midway between two neighbouring scores, so that no mask sits on it: ours and
    # segment_anything's scores differ by ~1e-6, and a score on the threshold would flip either way.
    positive = np.unique(scores[scores > 0])
    middle = positive.size // 2
    assert positive[middle] - positive[middle - 1] > 1e-4
    kwargs["pred_iou_thresh"] = float(positive[middle - 1] + positive[middle]) / 2
    ref = sa.SamAutomaticMaskGenerator(meta, output_mode="uncompressed_rle", **kwargs).generate(photo)
    ours = runtime.generate(photo, output_mode="uncompressed_rle", **kwargs)
    assert 0 < len(ref) < 6 * 6 * 3
    _check_parity(ours, ref)


def test_min_mask_region_area_matches_segment_anything(meta_pair, photo):
    runtime, meta = meta_pair
    kwargs = dict(points_per_side=4, min_mask_region_area=60, **OPEN)
    ref = sa.SamAutomaticMaskGenerator(meta, output_mode="binary_mask", **kwargs).generate(photo)
    ours = runtime.generate(photo, **kwargs)
    _check_parity(ours, ref)
    assert {r["area"] for r in ours} == {r["area"] for r in ref}


def test_default_thresholds_keep_nothing_on_random_weights(meta_pair, photo):
    runtime, meta = meta_pair
    ref = sa.SamAutomaticMaskGenerator(meta, points_per_side=4).generate(photo)
    ours = runtime.generate(photo, points_per_side=4)
    assert ref == [] and ours == []


def test_output_modes_and_progress(meta_pair, photo):
    runtime, _ = meta_pair
    calls = []
    binary = runtime.generate(photo, points_per_side=4, points_per_batch=5, progress=lambda d, t: calls.append((d, t)),
                              **OPEN)
    assert calls == [(i, 4) for i in range(1, 5)]
    coco = runtime.generate(photo, points_per_side=4, output_mode="coco_rle", **OPEN)
    mask_utils = pytest.importorskip("pycocotools.mask")
    assert len(binary) == len(coco) > 0
    for b, c in zip(binary, coco, strict=True):
        assert b["segmentation"].shape == photo.shape[:2] and b["segmentation"].dtype == np.bool_
        np.testing.assert_array_equal(mask_utils.decode(c["segmentation"]).astype(bool), b["segmentation"])
        assert b["area"] == int(b["segmentation"].sum())


@pytest.mark.parametrize(("kwargs", "argument"), [
    (dict(points_per_side=0), "points_per_side"),
    (dict(points_per_side=4, point_grids=[np.full((3, 2), 0.5)]), "points_per_side"),
    (dict(points_per_side=None, point_grids=[np.array([[0.5, 1.5]])]), "point_grids"),
    (dict(output_mode="png"), "output_mode"),
    (dict(points_per_batch=0), "points_per_batch"),
    (dict(crop_n_layers=-1), "crop_n_layers"),
    (dict(pred_iou_thresh=float("nan")), "pred_iou_thresh"),
    (dict(progress="yes"), "progress"),
])
def test_bad_generate_arguments_name_the_argument(meta_pair, photo, kwargs, argument):
    runtime, _ = meta_pair
    with pytest.raises(InvalidInputError, match=argument):
        runtime.generate(photo, **kwargs)


@pytest.fixture(scope="module")
def hf_runtime(tiny_engine):
    return SamRuntime.load(tiny_engine, backend="onnxruntime")


@pytest.mark.parametrize("crop_n_layers", [0, 1])
def test_generate_matches_transformers_pipeline(hf_runtime, hf_oracle, photo, crop_n_layers):
    transformers = pytest.importorskip("transformers")
    from PIL import Image
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    # The Pillow-backend processor: its pixel_values equal ours to 1e-5 (the torchvision backend
    # differs by up to 0.0175, which noise-like random masks would amplify).
    generator = transformers.pipeline("mask-generation", model=hf_oracle, image_processor=SamImageProcessorPil(),
                                      device="cpu")
    with torch.inference_mode():
        ref = generator(Image.fromarray(photo), points_per_crop=6, points_per_batch=16, pred_iou_thresh=0.0,
                        stability_score_thresh=0.0, crops_nms_thresh=1.0, crops_n_layers=crop_n_layers)
    ours = hf_runtime.generate(photo, points_per_side=6, points_per_batch=16, box_nms_thresh=1.0,
                               crop_nms_thresh=1.0, crop_n_layers=crop_n_layers, **OPEN)
    ref_records = [{"segmentation": np.asarray(m), "predicted_iou": float(s)}
                   for m, s in zip(ref["masks"], ref["scores"], strict=True)]
    assert len(ours) == len(ref_records) >= 6 * 6 * 3
    for o, r, iou in _match(ours, ref_records):
        assert iou >= 0.99
        assert abs(o["predicted_iou"] - r["predicted_iou"]) <= 1e-4
