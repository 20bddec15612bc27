"""Prompted segmentation as files: the masks of a set of prompts, an overlay that shows the
masks with the prompts drawn over them, and ``masks.json`` (COCO RLE). The library behind
``samexport segment``; callable from Python with a :class:`samrt.SamRuntime`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from . import spec
from .amg import batched_mask_to_box, box_xyxy_to_xywh, coco_encode_rle, mask_to_rle

__all__ = ["Point", "Box", "segment_prompts", "draw_overlay", "write_segmentation", "LABEL_COLOURS",
           "BOX_COLOUR"]

Point = tuple[float, float, int]  # x, y in image pixels, label (1 foreground, 0 background)
Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels

LABEL_COLOURS = {spec.LABEL_FOREGROUND: (0, 230, 64), spec.LABEL_BACKGROUND: (255, 40, 40)}
BOX_COLOUR = (40, 140, 255)


@dataclass(frozen=True, kw_only=True)
class Segmentation:
    """masks: bool [H, W] per object; records: per object its index, area, XYWH bbox and
    predicted IoU (``write_segmentation`` adds the PNG name and the COCO RLE)."""

    masks: list[np.ndarray]
    records: list[dict[str, Any]]


def segment_prompts(runtime: Any, image: Any, *, points: Sequence[Point] = (), boxes: Sequence[Box] = (),
                    multimask_output: bool = True) -> Segmentation:
    """One object per box (the points apply to each), or one object for points alone; with
    ``multimask_output`` the best of three masks by predicted IoU."""
    embedding = runtime.embed(image)
    kwargs: dict[str, np.ndarray] = {}
    n = max(len(boxes), 1)
    if points:
        coords = np.array([[p[0], p[1]] for p in points], np.float32)
        labels = np.array([p[2] for p in points], np.int32)
        kwargs["points"] = np.repeat(coords[None], n, axis=0)
        kwargs["labels"] = np.repeat(labels[None], n, axis=0)
    if boxes:
        kwargs["boxes"] = np.array(boxes, np.float32)
    result = runtime.predict(embedding, multimask_output=multimask_output, **kwargs)
    best = result.iou_scores.argmax(axis=1)
    masks = [result.masks[i, k] for i, k in enumerate(best)]
    records = [{"object": i, "area": int(m.sum()), "bbox": box_xyxy_to_xywh(batched_mask_to_box(m)).tolist(),
                "predicted_iou": float(result.iou_scores[i, k])}
               for i, (m, k) in enumerate(zip(masks, best, strict=True))]
    return Segmentation(masks=masks, records=records)


def draw_overlay(rgb: np.ndarray, masks: Sequence[np.ndarray], *, points: Sequence[Point] = (),
                 boxes: Sequence[Box] = ()) -> np.ndarray:
    """uint8 [H, W, 3]: each mask tinted half-way to its own colour (largest first, so small
    masks stay visible), then the boxes as outlines and the points as discs with a dark ring,
    coloured by label (:data:`LABEL_COLOURS`)."""
    overlay = rgb.astype(np.float32)
    colours = np.random.default_rng(0).integers(64, 256, (len(masks), 3))
    for i in sorted(range(len(masks)), key=lambda j: -int(masks[j].sum())):
        overlay[masks[i]] = 0.5 * overlay[masks[i]] + 0.5 * colours[i]
    picture = Image.fromarray(overlay.astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    side = max(rgb.shape[:2])
    width, radius = max(2, side // 300), max(4, side // 120)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle((x0, y0, x1, y1), outline=BOX_COLOUR, width=width)
    for x, y, label in points:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=LABEL_COLOURS.get(label, (255, 255, 255)),
                     outline=(0, 0, 0), width=max(1, width // 2))
    return np.asarray(picture)


def write_segmentation(out_dir: str | Path, *, image_name: str, rgb: np.ndarray, segmentation: Segmentation,
                       points: Sequence[Point] = (), boxes: Sequence[Box] = ()) -> list[Path]:
    """Write ``mask_<i>.png`` per mask, ``overlay.png`` (:func:`draw_overlay`) and ``masks.json``
    (the records, each with its PNG name and its mask as COCO RLE) to ``out_dir``; returns the
    paths written. OSError from the file system is left to the caller."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    records = [dict(r) for r in segmentation.records]
    for i, mask in enumerate(segmentation.masks):
        path = out_dir / f"mask_{i}.png"
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)
        records[i]["mask"] = path.name
        records[i]["segmentation"] = coco_encode_rle(mask_to_rle(mask)[0])
        written.append(path)
    overlay = out_dir / "overlay.png"
    Image.fromarray(draw_overlay(rgb, segmentation.masks, points=points, boxes=boxes)).save(overlay)
    listing = out_dir / "masks.json"
    listing.write_text(json.dumps({"image": image_name, "masks": records}, indent=2, allow_nan=False) + "\n")
    return [*written, overlay, listing]
