"""samrt.segmentation: prompted masks as files, with the prompts drawn on the overlay."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from samrt import SamRuntime
from samrt.segmentation import BOX_COLOUR, LABEL_COLOURS, draw_overlay, segment_prompts, write_segmentation

mask_utils = pytest.importorskip("pycocotools.mask")


def test_overlay_draws_points_by_label_and_boxes():
    rgb = np.full((200, 300, 3), 128, np.uint8)
    mask = np.zeros((200, 300), bool)
    mask[50:100, 50:150] = True
    picture = draw_overlay(rgb, [mask], points=[(60.0, 70.0, 1), (250.0, 150.0, 0)], boxes=[(20, 30, 280, 180)])
    assert picture.shape == rgb.shape and picture.dtype == np.uint8
    assert tuple(picture[70, 60]) == LABEL_COLOURS[1]
    assert tuple(picture[150, 250]) == LABEL_COLOURS[0]
    assert tuple(picture[30, 150]) == BOX_COLOUR and tuple(picture[105, 280]) == BOX_COLOUR
    assert not np.array_equal(picture[90, 140], rgb[90, 140])  # tinted by the mask
    assert np.array_equal(picture[120, 200], rgb[120, 200])  # outside masks and prompts: untouched


def test_written_files_agree_with_the_runtime(random_tiny_engine, tmp_path):
    runtime = SamRuntime.load(random_tiny_engine, backend="onnxruntime")
    rgb = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = [(10.0, 10.0, 90.0, 100.0), (50.0, 20.0, 150.0, 110.0)]
    result = segment_prompts(runtime, rgb, points=[(60.0, 50.0, 1)], boxes=boxes)
    reference = runtime.predict(runtime.embed(rgb), points=[[[60.0, 50.0]]] * 2, labels=[[1]] * 2, boxes=boxes)
    best = reference.iou_scores.argmax(axis=1)
    for i, mask in enumerate(result.masks):
        np.testing.assert_array_equal(mask, reference.masks[i, best[i]])
    written = write_segmentation(tmp_path, image_name="x.png", rgb=rgb, segmentation=result,
                                 points=[(60.0, 50.0, 1)], boxes=boxes)
    assert sorted(p.name for p in written) == ["mask_0.png", "mask_1.png", "masks.json", "overlay.png"]
    records = json.loads((tmp_path / "masks.json").read_text())["masks"]
    for record, mask in zip(records, result.masks, strict=True):
        np.testing.assert_array_equal(mask_utils.decode(record["segmentation"]).astype(bool), mask)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / record["mask"])) > 0, mask)
    assert tuple(np.asarray(Image.open(tmp_path / "overlay.png"))[50, 60]) == LABEL_COLOURS[1]
