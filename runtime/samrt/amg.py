"""Automatic-mask-generation helpers in NumPy, with the semantics of transformers' SAM image
processor (``generate_crop_boxes``, ``filter_masks``, ``post_process_for_mask_generation``) and
of ``segment_anything.utils.amg``.

Conventions: boxes are XYXY with inclusive right/bottom pixel indices (as both references
produce them from masks); crop boxes are XYXY with exclusive right/bottom; masks are bool
[..., H, W]; uncompressed RLE is ``{"size": [H, W], "counts": [int, ...]}`` over the mask in
column-major (Fortran) order, starting with a run of zeros; COCO RLE has ``counts`` as
pycocotools' compressed string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .images import to_rgb_uint8
from .processing import normalize_coordinates

__all__ = [
    "build_point_grid", "crop_boxes_for", "generate_crop_boxes", "compute_stability_score",
    "stability_from_counts", "batched_mask_to_box", "is_box_near_crop_edge", "uncrop_masks",
    "box_iou", "nms", "mask_to_rle", "rle_to_mask", "area_from_rle", "coco_encode_rle",
    "coco_decode_counts", "box_xyxy_to_xywh", "filter_masks", "post_process_for_mask_generation",
]


# -- grids and crops ------------------------------------------------------------------------------
def build_point_grid(n_per_side: int) -> np.ndarray:
    """float64 [n*n, 2] (x, y) points evenly spaced in [0, 1]^2, cell centres, row by row."""
    if not isinstance(n_per_side, (int, np.integer)) or n_per_side < 1:
        raise InvalidInputError("points_per_side", n_per_side, "an integer >= 1")
    offset = 1.0 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    xs = np.tile(side[None, :], (n_per_side, 1))
    ys = np.tile(side[:, None], (1, n_per_side))
    return np.stack([xs, ys], axis=-1).reshape(-1, 2)


def crop_boxes_for(
    original_size: tuple[int, int], crop_n_layers: int = 0, overlap_ratio: float = 512 / 1500
) -> tuple[list[list[int]], list[int]]:
    """Crop boxes (XYXY, exclusive ends) and their layer index: the whole image (layer 0), then
    (2^i)^2 overlapping crops for layer i = 1..crop_n_layers."""
    if crop_n_layers < 0:
        raise InvalidInputError("crop_n_layers", crop_n_layers, "an integer >= 0")
    height, width = original_size
    boxes, layers = [[0, 0, width, height]], [0]
    short_side = min(height, width)
    for layer in range(1, crop_n_layers + 1):
        per_side = 2 ** layer
        overlap = int(overlap_ratio * short_side * (2 / per_side))
        crop_w = int(math.ceil((overlap * (per_side - 1) + width) / per_side))
        crop_h = int(math.ceil((overlap * (per_side - 1) + height) / per_side))
        x0s = [int((crop_w - overlap) * i) for i in range(per_side)]
        y0s = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0, y0 in product(x0s, y0s):
            boxes.append([x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)])
            layers.append(layer)
    return boxes, layers


def generate_crop_boxes(
    image: Any,
    target_size: int = 1024,
    crop_n_layers: int = 0,
    overlap_ratio: float = 512 / 1500,
    points_per_crop: int = 32,
    crop_n_points_downscale_factor: int = 1,
):
    """transformers' ``generate_crop_boxes``: (crop_boxes float32 [C, 4], points_per_crop
    float32 [1, n_points, C, 2] in each crop's resized frame, cropped_images list of uint8
    [h, w, 3], input_labels int64 [1, n_points, C]). Layers with a different point count
    are not stackable, as in transformers."""
    rgb = to_rgb_uint8(image, argument="image")
    boxes, layers = crop_boxes_for(rgb.shape[:2], crop_n_layers, overlap_ratio)
    grids = [build_point_grid(int(points_per_crop / crop_n_points_downscale_factor ** i))
             for i in range(crop_n_layers + 1)]
    cropped, points = [], []
    for (x0, y0, x1, y1), layer in zip(boxes, layers, strict=True):
        crop = rgb[y0:y1, x0:x1]
        cropped.append(crop)
        scaled = grids[layer] * np.array([[crop.shape[1], crop.shape[0]]])
        points.append(normalize_coordinates(scaled, crop.shape[:2], target_size))
    stacked = np.stack(points).astype(np.float32)[None].transpose(0, 2, 1, 3)
    return (np.asarray(boxes, dtype=np.float32), stacked, cropped,
            np.ones(stacked.shape[:3], dtype=np.int64))


# -- scores, boxes, suppression --------------------------------------------------------------------
def compute_stability_score(logits: np.ndarray, mask_threshold: float, stability_score_offset: float) -> np.ndarray:
    """IoU of the masks thresholded at ``t + offset`` and at ``t - offset``: float32 [...]."""
    logits = np.asarray(logits)
    inter = np.count_nonzero(logits > (mask_threshold + stability_score_offset), axis=(-2, -1))
    union = np.count_nonzero(logits > (mask_threshold - stability_score_offset), axis=(-2, -1))
    return stability_from_counts(inter, union)


def stability_from_counts(intersections: np.ndarray, unions: np.ndarray) -> np.ndarray:
    """intersections / unions as float32 (NaN where both are 0, as the references give)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(intersections, np.float32) / np.asarray(unions, np.float32)).astype(np.float32)


def batched_mask_to_box(masks: np.ndarray) -> np.ndarray:
    """bool [..., H, W] -> int64 [..., 4] XYXY (inclusive); [0, 0, 0, 0] for an empty mask."""
    masks = np.asarray(masks, dtype=bool)
    if masks.size == 0:
        return np.zeros((*masks.shape[:-2], 4), np.int64)
    height, width = masks.shape[-2:]
    rows = masks.any(axis=-1)
    cols = masks.any(axis=-2)
    empty = ~rows.any(axis=-1)
    top = np.argmax(rows, axis=-1)
    bottom = height - 1 - np.argmax(rows[..., ::-1], axis=-1)
    left = np.argmax(cols, axis=-1)
    right = width - 1 - np.argmax(cols[..., ::-1], axis=-1)
    out = np.stack([left, top, right, bottom], axis=-1).astype(np.int64)
    out[empty] = 0
    return out


def is_box_near_crop_edge(boxes: np.ndarray, crop_box: Sequence[int], orig_box: Sequence[int],
                          atol: float = 20.0) -> np.ndarray:
    """bool [N]: boxes (crop frame, XYXY) that touch the crop's edge but not the image's."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    x0, y0 = crop_box[0], crop_box[1]
    uncropped = boxes + np.asarray([x0, y0, x0, y0], np.float32)
    near_crop = np.abs(uncropped - np.asarray(crop_box, np.float32)) <= atol
    near_image = np.abs(uncropped - np.asarray(orig_box, np.float32)) <= atol
    return (near_crop & ~near_image).any(axis=1)


def uncrop_masks(masks: np.ndarray, crop_box: Sequence[int], orig_h: int, orig_w: int) -> np.ndarray:
    """Place crop-frame masks [..., h, w] into the original frame [..., orig_h, orig_w]."""
    x0, y0, x1, y1 = (int(v) for v in crop_box)
    if (x0, y0, x1, y1) == (0, 0, orig_w, orig_h):
        return masks
    out = np.zeros((*masks.shape[:-2], orig_h, orig_w), dtype=masks.dtype)
    out[..., y0:y0 + masks.shape[-2], x0:x0 + masks.shape[-1]] = masks
    return out


def box_xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.array(boxes, copy=True)
    boxes[..., 2] -= boxes[..., 0]
    boxes[..., 3] -= boxes[..., 1]
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU [len(a), len(b)] of XYXY boxes with area (x1 - x0) * (y1 - y0) (torchvision's)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area_a[:, None] + area_b[None, :] - inter)
    return np.nan_to_num(iou, nan=0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression: int64 indices of the kept boxes, by descending score
    (ties keep their input order). A box is dropped when its IoU with a kept, higher-scored
    box exceeds ``iou_threshold``."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    if order.size == 0:
        return order.astype(np.int64)
    iou = box_iou(np.asarray(boxes)[order], np.asarray(boxes)[order])
    suppressed = np.zeros(order.size, dtype=bool)
    keep = []
    for i in range(order.size):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[np.asarray(keep, dtype=np.int64)]


# -- run-length encoding ---------------------------------------------------------------------------
def mask_to_rle(masks: np.ndarray) -> list[dict[str, Any]]:
    """bool [N, H, W] -> uncompressed RLEs (column-major runs, first run is zeros)."""
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim == 2:
        masks = masks[None]
    count, height, width = masks.shape
    out = []
    for index in range(count):
        flat = masks[index].T.reshape(-1)
        change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        edges = np.concatenate([[0], change, [flat.size]])
        counts = np.diff(edges).tolist()
        if flat[0]:
            counts = [0, *counts]
        out.append({"size": [height, width], "counts": counts})
    return out


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """Uncompressed RLE -> bool [H, W]."""
    height, width = rle["size"]
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != height * width or (counts < 0).any():
        raise InvalidInputError("rle", f"counts summing to {int(counts.sum())}", f"{height * width} (= H * W)")
    values = np.arange(counts.size) % 2 == 1
    return np.repeat(values, counts).reshape(width, height).T


def area_from_rle(rle: dict[str, Any]) -> int:
    return int(sum(rle["counts"][1::2]))


def coco_encode_rle(rle: dict[str, Any]) -> dict[str, Any]:
    """Uncompressed RLE -> COCO RLE with pycocotools' compressed ``counts`` string.

    Each count (after the second, as the difference to the count two before) is written in
    5-bit groups, low first, as characters 48 + group, bit 0x20 marking a continuation."""
    counts = [int(c) for c in rle["counts"]]
    chars = []
    for i, count in enumerate(counts):
        value = count - counts[i - 2] if i > 2 else count
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            chars.append(chr(group + 48 + (0x20 if more else 0)))
    return {"size": list(rle["size"]), "counts": "".join(chars)}


def coco_decode_counts(text: str) -> list[int]:
    """The inverse of :func:`coco_encode_rle`'s ``counts`` string."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            group = ord(text[position]) - 48
            value |= (group & 0x1F) << (5 * shift)
            more = bool(group & 0x20)
            position += 1
            shift += 1
            if not more and group & 0x10:
                value |= -1 << (5 * shift)
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


# -- the transformers image-processor entry points -------------------------------------------------
def filter_masks(
    masks: np.ndarray,
    iou_scores: np.ndarray,
    original_size: tuple[int, int],
    cropped_box_image: Sequence[int],
    pred_iou_thresh: float = 0.88,
    stability_score_thresh: float = 0.95,
    mask_threshold: float = 0.0,
    stability_score_offset: float = 1.0,
):
    """transformers' ``filter_masks``: masks float logits [B, M, h, w] at the crop's size,
    iou_scores [B, M] -> (RLEs in the original frame, scores float32 [K], boxes int64 [K, 4]
    XYXY in the original frame). Keeps iou > pred_iou_thresh (if > 0), stability >
    stability_score_thresh (if > 0), and masks not cut by the crop's edge."""
    masks = np.asarray(masks, np.float32)
    scores = np.asarray(iou_scores, np.float32).reshape(-1)
    masks = masks.reshape(-1, *masks.shape[-2:])
    if masks.shape[0] != scores.shape[0]:
        raise InvalidInputError("iou_scores", scores.shape[0], f"one score per mask ({masks.shape[0]})")
    keep = np.ones(scores.shape[0], dtype=bool)
    if pred_iou_thresh > 0.0:
        keep &= scores > pred_iou_thresh
    if stability_score_thresh > 0.0:
        keep &= compute_stability_score(masks, mask_threshold, stability_score_offset) > stability_score_thresh
    binary = masks[keep] > mask_threshold
    scores = scores[keep]
    boxes = batched_mask_to_box(binary)
    height, width = original_size
    inside = ~is_box_near_crop_edge(boxes, cropped_box_image, [0, 0, width, height])
    binary, scores, boxes = binary[inside], scores[inside], boxes[inside]
    x0, y0 = int(cropped_box_image[0]), int(cropped_box_image[1])
    boxes = boxes + np.asarray([x0, y0, x0, y0])
    return mask_to_rle(uncrop_masks(binary, cropped_box_image, height, width)), scores, boxes


def post_process_for_mask_generation(all_masks, all_scores, all_boxes, crops_nms_thresh: float = 0.7):
    """transformers' ``post_process_for_mask_generation``: NMS over the boxes -> (bool masks
    [H, W] list, scores, RLEs, boxes), ordered by descending score."""
    keep = nms(np.asarray(all_boxes, np.float32), np.asarray(all_scores), crops_nms_thresh)
    rles = [all_masks[i] for i in keep]
    return [rle_to_mask(r) for r in rles], np.asarray(all_scores)[keep], rles, np.asarray(all_boxes)[keep]
