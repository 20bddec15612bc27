"""samrt.SamPredictor and samrt.SamAutomaticMaskGenerator against segment_anything's, on the
same random weights (a Meta checkpoint loaded by both)."""

from __future__ import annotations

import numpy as np
import pytest
from samrt import SamAutomaticMaskGenerator, SamPredictor
from samrt.errors import InvalidInputError

torch = pytest.importorskip("torch")
sa = pytest.importorskip("segment_anything")

PROMPTS = {
    "point": {"point_coords": np.array([[90.0, 60.0]]), "point_labels": np.array([1])},
    "points": {"point_coords": np.array([[90.0, 60.0], [30.0, 200.0]]), "point_labels": np.array([1, 0])},
    "box": {"box": np.array([20.0, 30.0, 140.0, 220.0])},
    "point+box": {"point_coords": np.array([[90.0, 60.0]]), "point_labels": np.array([1]),
                  "box": np.array([20.0, 30.0, 140.0, 220.0])},
}


@pytest.fixture(scope="module")
def predictors(meta_pair, photo):
    runtime, meta = meta_pair
    ours, theirs = SamPredictor(runtime), sa.SamPredictor(meta)
    ours.set_image(photo)
    with torch.inference_mode():
        theirs.set_image(photo)
    return ours, theirs


def _theirs(predictor, **kwargs):
    with torch.inference_mode():
        return predictor.predict(**kwargs)


def _check(ours, theirs, return_logits: bool) -> None:
    for mine, ref in zip(ours, theirs, strict=True):
        assert mine.shape == ref.shape
    masks, scores, low_res = ours
    ref_masks, ref_scores, ref_low_res = theirs
    assert masks.dtype == (np.float32 if return_logits else np.bool_)
    assert scores.dtype == np.float32 and low_res.dtype == np.float32
    assert np.abs(scores - ref_scores).max() <= 1e-4
    assert np.abs(low_res - ref_low_res).max() <= 1e-3
    if return_logits:
        assert np.abs(masks - ref_masks).max() <= 1e-3
    else:
        agree = (masks == ref_masks).mean()
        assert agree >= 0.999
        assert 0.0 < masks.mean() < 1.0


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("kind", sorted(PROMPTS))
def test_predict_matches_segment_anything(predictors, kind, multimask):
    ours, theirs = predictors
    kwargs = PROMPTS[kind] | {"multimask_output": multimask}
    _check(ours.predict(**kwargs), _theirs(theirs, **kwargs), return_logits=False)


def test_logits_and_mask_input_match_segment_anything(predictors):
    ours, theirs = predictors
    first = ours.predict(**PROMPTS["point"], multimask_output=True, return_logits=True)
    _check(first, _theirs(theirs, **PROMPTS["point"], multimask_output=True, return_logits=True), return_logits=True)
    previous = first[2][np.argmax(first[1])][None]  # [1, 256, 256], as Meta's examples pass it
    kwargs = PROMPTS["points"] | {"mask_input": previous, "multimask_output": False}
    _check(ours.predict(**kwargs), _theirs(theirs, **kwargs), return_logits=False)


def test_image_state_and_bgr(meta_pair, photo, predictors):
    runtime, _ = meta_pair
    ours, theirs = predictors
    assert ours.original_size == tuple(theirs.original_size)
    assert ours.input_size == tuple(theirs.input_size)
    np.testing.assert_allclose(ours.get_image_embedding(), theirs.get_image_embedding().numpy(), atol=1e-4)
    bgr = SamPredictor(runtime)
    bgr.set_image(np.ascontiguousarray(photo[..., ::-1]), image_format="BGR")
    np.testing.assert_array_equal(bgr.get_image_embedding(), ours.get_image_embedding())
    bgr.reset_image()
    assert not bgr.is_image_set
    with pytest.raises(InvalidInputError, match="set_image"):
        bgr.predict(**PROMPTS["point"])
    with pytest.raises(InvalidInputError, match="point_labels"):
        ours.predict(point_coords=np.array([[1.0, 2.0]]))


def test_automatic_mask_generator_matches_segment_anything(meta_pair, photo):
    runtime, meta = meta_pair
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    ours = SamAutomaticMaskGenerator(runtime, **options).generate(photo)
    with torch.inference_mode():
        ref = sa.SamAutomaticMaskGenerator(meta, **options).generate(photo)
    assert len(ref) > 0 and len(ours) == len(ref)
    ours_by_point = {tuple(np.round(r["point_coords"][0], 3)): r for r in ours}
    for r in ref:
        mine = ours_by_point[tuple(np.round(r["point_coords"][0], 3))]
        assert abs(mine["predicted_iou"] - r["predicted_iou"]) <= 1e-4
        iou = (mine["segmentation"] & r["segmentation"]).sum() / max((mine["segmentation"] | r["segmentation"]).sum(), 1)
        assert iou >= 0.99
    with pytest.raises(InvalidInputError, match="points_per_sid"):
        SamAutomaticMaskGenerator(runtime, points_per_sid=4)
