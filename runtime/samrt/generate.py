"""Automatic mask generation ("segment everything") on a loaded runtime, with
``segment_anything.SamAutomaticMaskGenerator``'s algorithm and record format.

Per crop (the whole image, then ``crop_n_layers`` layers of overlapping crops): embed the crop
once; run the point grid through the decoder ``points_per_batch`` prompts per call (all three
multimask outputs); drop masks with predicted IoU <= ``pred_iou_thresh`` (when > 0); upscale
the survivors in small chunks to the crop's size (boundary-only binarisation, so a batch never
holds full-resolution float logits) to compute stability scores (kept when >= the threshold,
when > 0), boxes and RLEs; drop masks cut by a crop edge; NMS by predicted IoU inside the crop;
NMS across crops preferring smaller crops; optionally remove small holes and islands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from .amg import (
    area_from_rle,
    batched_mask_to_box,
    box_xyxy_to_xywh,
    build_point_grid,
    coco_encode_rle,
    crop_boxes_for,
    is_box_near_crop_edge,
    mask_to_rle,
    nms,
    rle_to_mask,
    stability_from_counts,
    uncrop_masks,
)
from .checks import check_int
from .errors import InvalidInputError
from .images import to_rgb_uint8
from .regions import remove_small_regions
from .upscale import binarize_masks_at, upscale_masks_matmul

__all__ = ["GenerateSettings", "generate_masks", "OUTPUT_MODES"]

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
# Bounds on the work one call may ask for (segment_anything's defaults: 32 per side, 64 per
# batch, no crop layers, 1,024 prompts). Past these a call would run for hours, not seconds.
MAX_POINTS_PER_SIDE = 256
MAX_POINTS_PER_BATCH = 1024
MAX_CROP_LAYERS = 4
MAX_PROMPTS = 1 << 17  # decoder prompts over all crops: about 1.5 h of ViT-B decoder time on 2 CPU cores
# Masks upscaled to full resolution at once: bounds memory at ~7 x this x H x W bytes.
_MASK_CHUNK = 8


@dataclass(frozen=True, kw_only=True)
class GenerateSettings:
    """``SamAutomaticMaskGenerator``'s options (same names and defaults). ``point_grids``:
    one [K, 2] array of (x, y) in [0, 1] per crop layer, instead of ``points_per_side``."""

    points_per_side: int | None = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    mask_threshold: float = 0.0
    box_nms_thresh: float = 0.7
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    point_grids: Sequence[np.ndarray] | None = field(default=None, compare=False)
    min_mask_region_area: int = 0
    output_mode: str = "binary_mask"

    def __post_init__(self) -> None:
        if (self.points_per_side is None) == (self.point_grids is None):
            raise InvalidInputError("points_per_side", self.points_per_side,
                                    "exactly one of points_per_side and point_grids")
        if self.points_per_side is not None:
            check_int("points_per_side", self.points_per_side, low=1, high=MAX_POINTS_PER_SIDE)
        check_int("points_per_batch", self.points_per_batch, low=1, high=MAX_POINTS_PER_BATCH)
        check_int("crop_n_layers", self.crop_n_layers, low=0, high=MAX_CROP_LAYERS)
        check_int("crop_n_points_downscale_factor", self.crop_n_points_downscale_factor, low=1)
        if self.points_per_side is not None and \
                int(self.points_per_side / self.crop_n_points_downscale_factor ** self.crop_n_layers) < 1:
            raise InvalidInputError(
                "crop_n_points_downscale_factor", self.crop_n_points_downscale_factor,
                f"a factor that leaves crop layer {self.crop_n_layers} at least one point per side "
                f"(points_per_side {self.points_per_side} / factor ** {self.crop_n_layers} >= 1)")
        if self.output_mode not in OUTPUT_MODES:
            raise InvalidInputError("output_mode", self.output_mode, f"one of {OUTPUT_MODES}")
        for name in ("pred_iou_thresh", "stability_score_thresh", "stability_score_offset", "mask_threshold",
                     "box_nms_thresh", "crop_nms_thresh", "crop_overlap_ratio", "min_mask_region_area"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.number)) or not np.isfinite(value):
                raise InvalidInputError(name, value, "a finite number")
        if not 0.0 <= self.crop_overlap_ratio < 1.0:
            raise InvalidInputError("crop_overlap_ratio", self.crop_overlap_ratio, "a number in [0, 1)")
        if self.point_grids is not None:
            if isinstance(self.point_grids, (str, bytes)) or not isinstance(self.point_grids, (Sequence, np.ndarray)):
                raise InvalidInputError("point_grids", type(self.point_grids).__name__,
                                        "a list with one [K, 2] array per crop layer")
            if len(self.point_grids) != self.crop_n_layers + 1:
                raise InvalidInputError("point_grids", f"{len(self.point_grids)} grids",
                                        f"one per crop layer ({self.crop_n_layers + 1})")
            for grid in self.point_grids:
                try:
                    arr = np.asarray(grid, dtype=np.float64)
                except (TypeError, ValueError) as exc:
                    raise InvalidInputError("point_grids", type(grid).__name__, "[K, 2] arrays of numbers") from exc
                if arr.ndim != 2 or arr.shape[1] != 2 or not 1 <= arr.shape[0] <= MAX_POINTS_PER_SIDE ** 2:
                    raise InvalidInputError("point_grids", f"a grid of shape {arr.shape}",
                                            f"[K, 2] with 1 <= K <= {MAX_POINTS_PER_SIDE ** 2}")
                if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
                    raise InvalidInputError("point_grids", "values outside [0, 1]", "(x, y) in [0, 1]")

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> GenerateSettings:
        """Settings from keyword options (segment_anything's names); an unknown name is an
        InvalidInputError listing the known ones."""
        known = cls.option_names()
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise InvalidInputError(unknown[0], options[unknown[0]], f"one of the options {list(known)}")
        return cls(**options)

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def options(self) -> dict[str, Any]:
        """The settings as keyword options (what :meth:`from_options` takes)."""
        return {name: getattr(self, name) for name in self.option_names()}

    def grids(self) -> list[np.ndarray]:
        if self.point_grids is not None:
            return [np.asarray(g, dtype=np.float64) for g in self.point_grids]
        return [build_point_grid(int(self.points_per_side / self.crop_n_points_downscale_factor ** i))
                for i in range(self.crop_n_layers + 1)]


def check_crops_fit(original_size: tuple[int, int], settings: GenerateSettings) -> None:
    """Refuse crop layers an image is too small for (a crop box of zero width or height), and
    runs of more than ``MAX_PROMPTS`` decoder prompts in all (crops x grid points)."""
    boxes, layers = crop_boxes_for(original_size, settings.crop_n_layers, settings.crop_overlap_ratio)
    for (x0, y0, x1, y1), layer in zip(boxes, layers, strict=True):
        if x1 <= x0 or y1 <= y0:
            raise InvalidInputError("crop_n_layers", settings.crop_n_layers,
                                    f"fewer crop layers for a {original_size[1]}x{original_size[0]} image "
                                    f"(layer {layer} would cut crops of no pixels)")
    grids = settings.grids()
    prompts = sum(len(grids[layer]) for layer in layers)
    if prompts > MAX_PROMPTS:
        raise InvalidInputError("points_per_side", settings.points_per_side or "point_grids",
                                f"at most {MAX_PROMPTS} prompts in all; these settings ask for {prompts} "
                                f"({len(boxes)} crops)")


@dataclass
class _Found:
    """Masks kept so far: RLEs in the original frame and per-mask arrays."""

    rles: list = field(default_factory=list)
    boxes: list = field(default_factory=list)       # int64 [4] XYXY, original frame
    iou: list = field(default_factory=list)
    stability: list = field(default_factory=list)
    points: list = field(default_factory=list)      # float64 [2], original frame
    crop_boxes: list = field(default_factory=list)  # XYXY

    def take(self, keep: np.ndarray) -> _Found:
        return _Found(**{name: [getattr(self, name)[i] for i in keep] for name in self.__dataclass_fields__})

    def extend(self, other: _Found) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


def generate_masks(runtime, image: Any, settings: GenerateSettings,
                   progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """See :meth:`samrt.SamRuntime.generate`."""
    rgb = to_rgb_uint8(image, argument="image")
    height, width = rgb.shape[:2]
    check_crops_fit((height, width), settings)
    crop_boxes, layers = crop_boxes_for((height, width), settings.crop_n_layers, settings.crop_overlap_ratio)
    grids = settings.grids()
    batch = settings.points_per_batch
    total = sum(-(-len(grids[layer]) // batch) for layer in layers)
    done = 0
    found = _Found()
    for crop_box, layer in zip(crop_boxes, layers, strict=True):
        x0, y0, x1, y1 = crop_box
        crop = rgb[y0:y1, x0:x1]
        embedding = runtime.embed(crop)
        points = grids[layer] * np.array([[crop.shape[1], crop.shape[0]]], dtype=np.float64)
        in_crop = _Found()
        for start in range(0, len(points), batch):
            in_crop.extend(_process_batch(runtime, embedding, points[start:start + batch], crop_box,
                                          (height, width), settings))
            done += 1
            if progress is not None:
                progress(done, total)
        if in_crop.rles:
            keep = nms(np.asarray(in_crop.boxes, np.float32), np.asarray(in_crop.iou), settings.box_nms_thresh)
            found.extend(in_crop.take(keep))
    if len(crop_boxes) > 1 and found.rles:
        crops = np.asarray(found.crop_boxes, np.float64)
        scores = 1.0 / ((crops[:, 2] - crops[:, 0]) * (crops[:, 3] - crops[:, 1]))
        found = found.take(nms(np.asarray(found.boxes, np.float32), scores, settings.crop_nms_thresh))
    if settings.min_mask_region_area > 0 and found.rles:
        found = _remove_small_regions(found, settings.min_mask_region_area,
                                      max(settings.box_nms_thresh, settings.crop_nms_thresh))
    return _records(found, settings.output_mode)


def _process_batch(runtime, embedding, points: np.ndarray, crop_box, original_size, settings) -> _Found:
    crop_h, crop_w = embedding.original_size
    labels = np.ones((len(points), 1), np.int32)
    out = runtime.decode(runtime.decoder_feeds(embedding, points[:, None, :], labels, None, None))
    iou = out["iou_scores"][:, 1:].reshape(-1)
    low = out["low_res_masks"][:, 1:].reshape(-1, *out["low_res_masks"].shape[-2:])
    mask_points = np.repeat(points, 3, axis=0)
    keep = np.flatnonzero(iou > settings.pred_iou_thresh) if settings.pred_iou_thresh > 0.0 else np.arange(iou.size)
    result = _Found()
    height, width = original_size
    threshold, offset = settings.mask_threshold, settings.stability_score_offset
    x0, y0 = crop_box[0], crop_box[1]
    sizes = ((crop_h, crop_w), embedding.reshaped_input_size, (runtime.image_size, runtime.image_size))
    for start in range(0, keep.size, _MASK_CHUNK):
        index = keep[start:start + _MASK_CHUNK]
        thresholds = (threshold, threshold + offset, threshold - offset)
        if crop_h * crop_w <= sizes[1][0] * sizes[1][1]:
            # Output no larger than the resized frame: two BLAS products beat the boundary path.
            logits = upscale_masks_matmul(low[index], *sizes)
            binary, high, low_ = (logits > t for t in thresholds)
            del logits
        else:
            binary, high, low_ = binarize_masks_at(low[index], *sizes, thresholds=thresholds)
        stability = stability_from_counts(np.count_nonzero(high, axis=(1, 2)), np.count_nonzero(low_, axis=(1, 2)))
        del high, low_
        ok = stability >= settings.stability_score_thresh if settings.stability_score_thresh > 0.0 \
            else np.ones(index.size, bool)
        boxes = batched_mask_to_box(binary)
        ok &= ~is_box_near_crop_edge(boxes, crop_box, [0, 0, width, height])
        chosen = np.flatnonzero(ok)
        if chosen.size == 0:
            continue
        result.rles.extend(mask_to_rle(uncrop_masks(binary[chosen], crop_box, height, width)))
        result.boxes.extend(boxes[chosen] + np.array([x0, y0, x0, y0]))
        result.iou.extend(iou[index[chosen]].tolist())
        result.stability.extend(stability[chosen].tolist())
        result.points.extend(mask_points[index[chosen]] + np.array([x0, y0]))
        result.crop_boxes.extend([list(crop_box)] * chosen.size)
    return result


def _remove_small_regions(found: _Found, min_area: float, nms_thresh: float) -> _Found:
    """segment_anything's ``postprocess_small_regions``: clean each mask, then NMS preferring
    masks the cleaning did not change; changed masks get new RLEs and boxes."""
    boxes, scores, cleaned = [], [], []
    for rle in found.rles:
        mask = rle_to_mask(rle)
        mask, changed_holes = remove_small_regions(mask, min_area, "holes")
        mask, changed_islands = remove_small_regions(mask, min_area, "islands")
        unchanged = not (changed_holes or changed_islands)
        scores.append(float(unchanged))
        boxes.append(batched_mask_to_box(mask))
        cleaned.append(None if unchanged else mask_to_rle(mask)[0])
    keep = nms(np.asarray(boxes, np.float32), np.asarray(scores), nms_thresh)
    for i in keep:
        if cleaned[i] is not None:
            found.rles[i] = cleaned[i]
            found.boxes[i] = boxes[i]
    return found.take(keep)


def _records(found: _Found, output_mode: str) -> list[dict[str, Any]]:
    records = []
    for i, rle in enumerate(found.rles):
        if output_mode == "coco_rle":
            segmentation: Any = coco_encode_rle(rle)
        elif output_mode == "binary_mask":
            segmentation = rle_to_mask(rle)
        else:
            segmentation = rle
        records.append({
            "segmentation": segmentation,
            "area": area_from_rle(rle),
            "bbox": box_xyxy_to_xywh(np.asarray(found.boxes[i])).tolist(),
            "predicted_iou": float(found.iou[i]),
            "point_coords": [np.asarray(found.points[i], dtype=np.float64).tolist()],
            "stability_score": float(found.stability[i]),
            "crop_box": box_xyxy_to_xywh(np.asarray(found.crop_boxes[i])).tolist(),
        })
    return records
