"""``SamProcessor`` without torch: transformers' pre- and post-processing in NumPy + Pillow.

Preprocess: resize so the longest edge is 1024 (Pillow bilinear on uint8 RGB, as transformers'
Pillow backend does), rescale by 1/255, normalise with the ImageNet mean/std, pad bottom/right
with zeros to 1024x1024. Returns float32 [B, 3, 1024, 1024].

Points and boxes are given in original-image pixels and scaled to the resized frame with
transformers' factors (new_w / old_w, new_h / old_h). Points outside the image are **kept as
given** (SAM handles them, as transformers and segment_anything do); NaN / inf are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from . import spec
from .checks import check_int, check_number, rectangular_array
from .errors import InvalidInputError
from .images import to_rgb_image
from .resize import resize_rgb
from .upscale import binarize_masks, upscale_masks

__all__ = [
    "SamProcessor",
    "preprocess_shape",
    "normalize_coordinates",
    "post_process_masks",
    "upscale_masks",
]


def preprocess_shape(original_size: tuple[int, int], longest_edge: int = spec.IMAGE_SIZE) -> tuple[int, int]:
    """(height, width) after resizing the longest edge to ``longest_edge`` (transformers' rounding)."""
    height, width = original_size
    scale = longest_edge * 1.0 / max(height, width)
    # transformers fails on a side that rounds to 0 (e.g. 1 x 4000); we keep one pixel.
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def normalize_coordinates(
    coords: np.ndarray, original_size: tuple[int, int], longest_edge: int = spec.IMAGE_SIZE
) -> np.ndarray:
    """Scale (x, y) pixel coordinates [..., 2] of the original image to the resized frame (float32)."""
    new_h, new_w = preprocess_shape(original_size, longest_edge)
    old_h, old_w = original_size
    out = np.array(coords, dtype=np.float64, copy=True)
    out[..., 0] *= new_w / old_w
    out[..., 1] *= new_h / old_h
    return out.astype(np.float32)


MAX_SIDE = 8192  # the longest resized edge and padded side the processor accepts (SAM: 1024)
_RESAMPLE_FILTERS = frozenset(int(f) for f in Image.Resampling)


def _three_numbers(argument: str, values: Any, *, positive: bool) -> np.ndarray:
    if isinstance(values, (int, float, np.number)) and not isinstance(values, bool):
        values = [values] * 3  # one number for every channel, as transformers accepts
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)) or len(values) != 3:
        raise InvalidInputError(argument, values, "three numbers (one per RGB channel)")
    return np.asarray([check_number(f"{argument}[{i}]", v, positive=positive) for i, v in enumerate(values)],
                      dtype=np.float32)


class SamProcessor:
    """transformers' ``SamProcessor`` options and semantics, returning NumPy arrays."""

    def __init__(
        self,
        *,
        do_resize: bool = True,
        size: dict[str, int] | None = None,
        resample: int = Image.Resampling.BILINEAR,
        do_rescale: bool = True,
        rescale_factor: float = spec.RESCALE_FACTOR,
        do_normalize: bool = True,
        image_mean: Sequence[float] = spec.IMAGE_MEAN,
        image_std: Sequence[float] = spec.IMAGE_STD,
        do_pad: bool = True,
        pad_size: dict[str, int] | None = None,
        do_convert_rgb: bool = True,
    ) -> None:
        self.do_resize = do_resize
        if size is not None and (not isinstance(size, dict) or set(size) != {"longest_edge"}):
            raise InvalidInputError("size", size, 'a dict {"longest_edge": positive int}')
        self.size = {"longest_edge": check_int('size["longest_edge"]', (size or {}).get("longest_edge", spec.IMAGE_SIZE),
                                               low=1, high=MAX_SIDE)}
        if resample not in _RESAMPLE_FILTERS:
            raise InvalidInputError("resample", resample, f"a PIL resampling filter {sorted(_RESAMPLE_FILTERS)}")
        self.resample = resample
        self.do_rescale = do_rescale
        self.rescale_factor = check_number("rescale_factor", rescale_factor, positive=True)
        self.do_normalize = do_normalize
        self.image_mean = _three_numbers("image_mean", image_mean, positive=False)
        self.image_std = _three_numbers("image_std", image_std, positive=True)
        self.do_pad = do_pad
        if pad_size is not None and (not isinstance(pad_size, dict) or set(pad_size) != {"height", "width"}):
            raise InvalidInputError("pad_size", pad_size, 'a dict {"height": int, "width": int}')
        self.pad_size = {key: check_int(f'pad_size["{key}"]', (pad_size or {}).get(key, spec.IMAGE_SIZE),
                                        low=1, high=MAX_SIDE) for key in ("height", "width")}
        self.do_convert_rgb = do_convert_rgb
        # Fused rescale + normalise: x * a + b per channel.
        scale = self.rescale_factor if do_rescale else 1.0
        self._mul = (scale / self.image_std) if do_normalize else np.full(3, scale, np.float32)
        self._add = (-self.image_mean / self.image_std) if do_normalize else np.zeros(3, np.float32)

    @property
    def longest_edge(self) -> int:
        return int(self.size["longest_edge"])

    # -- images --------------------------------------------------------------------------------
    def preprocess_image(
        self, image: Any, *, out: np.ndarray | None = None, argument: str = "images",
    ) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
        """One image -> (pixel_values float32 [3, Hp, Wp], original (H, W), reshaped (h, w)).

        out: optional float32 [3, Hp, Wp] to write into (e.g. one row of a batch), returned as
        pixel_values; its padding is zeroed here. argument: the caller's name for ``image``,
        used in errors."""
        rgb = to_rgb_image(image, argument=argument)
        original = (rgb.height, rgb.width)
        reshaped, (ph, pw) = self._frame(original)
        if out is None:
            out = np.zeros((3, ph, pw), dtype=np.float32)
        elif out.shape != (3, ph, pw) or out.dtype != np.float32:
            raise InvalidInputError("out", f"{out.dtype} array of shape {out.shape}", f"float32 [3, {ph}, {pw}]")
        else:
            out[:, reshaped[0]:, :] = 0.0
            out[:, :reshaped[0], reshaped[1]:] = 0.0

        def normalise(x0: int, y0: int, strip: Image.Image) -> None:
            pixels = np.asarray(strip, dtype=np.uint8)
            x1, y1 = x0 + pixels.shape[1], y0 + pixels.shape[0]
            for c in range(3):
                np.multiply(pixels[:, :, c], self._mul[c], out=out[c, y0:y1, x0:x1], casting="unsafe")
                out[c, y0:y1, x0:x1] += self._add[c]

        resize_rgb(rgb, (reshaped[1], reshaped[0]), self.resample, normalise)
        return out, original, reshaped

    def _frame(self, original: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
        """(resized (h, w), padded (Hp, Wp)) for an image of size ``original``."""
        reshaped = preprocess_shape(original, self.longest_edge) if self.do_resize else original
        if not self.do_pad:
            return reshaped, reshaped
        ph, pw = self.pad_size["height"], self.pad_size["width"]
        if reshaped[0] > ph or reshaped[1] > pw:
            raise InvalidInputError("pad_size", self.pad_size, f"at least the resized size {reshaped}")
        return reshaped, (ph, pw)

    def __call__(
        self,
        images: Any,
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
    ) -> dict[str, np.ndarray]:
        """transformers' ``SamProcessor.__call__`` with NumPy outputs.

        images: one image or a list. input_points: per image a list of point batches, each a
        list of (x, y) (transformers' nesting [B][point_batch][n][2]); ragged point lists are
        padded with (-10, -10) and label -10. input_labels: [B][point_batch][n]. input_boxes:
        [B][n_boxes][4] as (x0, y0, x1, y1).
        Returns ``pixel_values`` float32 [B, 3, 1024, 1024], ``original_sizes`` and
        ``reshaped_input_sizes`` int64 [B, 2], and where given ``input_points`` float32
        [B, point_batch, n, 2], ``input_labels`` int64 [B, point_batch, n], ``input_boxes``
        float32 [B, n_boxes, 4].
        """
        image_list = list(images) if isinstance(images, (list, tuple)) else [images]
        if not image_list:
            raise InvalidInputError("images", images, "at least one image")
        rgb_images = [to_rgb_image(image) for image in image_list]
        frames = {self._frame((rgb.height, rgb.width))[1] for rgb in rgb_images}
        if len(frames) != 1:
            raise InvalidInputError("images", sorted(frames), "equal sizes when do_pad=False")
        # Each image is written straight into its row of the batch: no stacking copy.
        batch = np.empty((len(rgb_images), 3, *frames.pop()), dtype=np.float32)
        originals, reshaped = [], []
        for rgb, row in zip(rgb_images, batch, strict=True):
            _, o, r = self.preprocess_image(rgb, out=row)
            originals.append(o)
            reshaped.append(r)
        result: dict[str, np.ndarray] = {
            "pixel_values": batch,
            "original_sizes": np.asarray(originals, dtype=np.int64),
            "reshaped_input_sizes": np.asarray(reshaped, dtype=np.int64),
        }
        result.update(self.normalize_prompts(originals, input_points, input_labels, input_boxes))
        return result

    # -- prompts -------------------------------------------------------------------------------
    def normalize_prompts(
        self,
        original_sizes: Sequence[tuple[int, int]],
        input_points: Any = None,
        input_labels: Any = None,
        input_boxes: Any = None,
    ) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        batch = len(original_sizes)
        if input_points is not None:
            points = _per_image(input_points, batch, "input_points")
            labels = _per_image(input_labels, batch, "input_labels") if input_labels is not None else None
            arrays, label_arrays = [], []
            for i, per_image in enumerate(points):
                arr = finite_array(per_image, "input_points")
                if arr.ndim == 2:
                    arr = arr[None]
                if arr.ndim != 3 or arr.shape[-1] != 2:
                    raise InvalidInputError("input_points", f"image {i}: shape {arr.shape}",
                                            "[point_batch, n, 2] per image")
                arrays.append(normalize_coordinates(arr, original_sizes[i], self.longest_edge))
                if labels is not None:
                    lab = rectangular_array(labels[i], "input_labels")
                    if lab.ndim == 1:
                        lab = lab[None]
                    check_labels(lab, "input_labels")
                    if lab.shape != arr.shape[:-1]:
                        raise InvalidInputError("input_labels", f"image {i}: shape {lab.shape}",
                                                f"{arr.shape[:-1]} to match input_points")
                    label_arrays.append(lab.astype(np.int64))
            arrays, label_arrays = _pad_ragged(arrays, label_arrays if labels is not None else None)
            out["input_points"] = np.stack(arrays).astype(np.float32)
            if labels is not None:
                out["input_labels"] = np.stack(label_arrays)
        elif input_labels is not None:
            raise InvalidInputError("input_labels", "given without input_points", "input_points as well")
        if input_boxes is not None:
            boxes = _per_image(input_boxes, batch, "input_boxes")
            arrays = []
            for i, per_image in enumerate(boxes):
                arr = finite_array(per_image, "input_boxes")
                if arr.ndim == 1:
                    arr = arr[None]
                if arr.ndim != 2 or arr.shape[-1] != 4:
                    raise InvalidInputError("input_boxes", f"image {i}: shape {arr.shape}", "[n_boxes, 4] per image")
                check_boxes(arr, "input_boxes")
                arrays.append(
                    normalize_coordinates(arr.reshape(-1, 2, 2), original_sizes[i], self.longest_edge).reshape(-1, 4)
                )
            if len({a.shape for a in arrays}) != 1:
                raise InvalidInputError("input_boxes", [a.shape for a in arrays], "the same number of boxes per image")
            out["input_boxes"] = np.stack(arrays).astype(np.float32)
        return out

    # -- masks ---------------------------------------------------------------------------------
    def post_process_masks(
        self,
        masks: Any,
        original_sizes: Any,
        reshaped_input_sizes: Any,
        mask_threshold: float = 0.0,
        binarize: bool = True,
        pad_size: dict[str, int] | None = None,
    ) -> list[np.ndarray]:
        return post_process_masks(
            masks, original_sizes, reshaped_input_sizes, mask_threshold=mask_threshold,
            binarize=binarize, pad_size=pad_size or self.pad_size,
        )


COORDINATE_REACH = 16  # image sizes outside the image that a prompt given to the runtime may lie
COORDINATE_MARGIN = 64  # pixels beyond that


def check_coordinates(coords: np.ndarray, argument: str, original_size: tuple[int, int]) -> None:
    """Refuse (x, y) coordinates [..., 2] (or boxes [..., 4]) farther than ``COORDINATE_REACH``
    image sizes (plus ``COORDINATE_MARGIN`` pixels) outside the image: further out they carry no
    meaning, and near 1e38 the prompt encoder's float32 arithmetic overflows to NaN. The runtime
    checks this; ``SamProcessor`` keeps transformers' behaviour and only refuses NaN / inf."""
    side = max(original_size)
    low = -(COORDINATE_REACH * side + COORDINATE_MARGIN)
    high = (COORDINATE_REACH + 1) * side + COORDINATE_MARGIN
    outside = (coords < low) | (coords > high)
    if outside.any():
        raise InvalidInputError(argument, float(coords[outside][0]),
                                f"coordinates from {low} to {high} for a {original_size[1]}x{original_size[0]} image "
                                f"(within {COORDINATE_REACH} image sizes plus {COORDINATE_MARGIN} pixels of it)")


def check_boxes(boxes: np.ndarray, argument: str) -> None:
    """Refuse boxes [..., 4] whose x1 < x0 or y1 < y0."""
    bad = (boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InvalidInputError(argument, boxes[index].tolist(), "x0 <= x1 and y0 <= y1 (x0, y0, x1, y1)")


def check_labels(labels: np.ndarray, argument: str, allowed: tuple[int, ...] = spec.VALID_LABELS) -> None:
    """Refuse labels that are not integral numbers (integral floats pass, as in transformers) or
    not in ``allowed`` (a label set of :mod:`samrt.spec`), naming ``argument``."""
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or not np.array_equal(labels, np.round(labels)):
            raise InvalidInputError(argument, labels.tolist(), "integers")
    bad = ~np.isin(labels, allowed)
    if bad.any():
        raise InvalidInputError(argument, labels[bad].tolist()[:5], f"values in {allowed}")


def finite_array(value: Any, argument: str, *, allow_empty: bool = False) -> np.ndarray:
    """``value`` as a float64 array; InvalidInputError naming ``argument`` for non-numbers,
    NaN / inf, and (unless ``allow_empty``) an empty array."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(argument, value, "a (nested) list or array of numbers") from exc
    if arr.size == 0 and not allow_empty:
        raise InvalidInputError(argument, value, "at least one point or box")
    if not np.isfinite(arr).all():
        raise InvalidInputError(argument, "NaN/inf coordinates", "finite coordinates")
    return arr


def _per_image(value: Any, batch: int, argument: str) -> list[Any]:
    if isinstance(value, np.ndarray):
        value = list(value)
    if not isinstance(value, (list, tuple)):
        raise InvalidInputError(argument, type(value).__name__, "a list with one entry per image")
    if len(value) != batch:
        raise InvalidInputError(argument, f"{len(value)} entries", f"one per image ({batch})")
    return list(value)


def _pad_ragged(points: list[np.ndarray], labels: list[np.ndarray] | None):
    """Pad point lists of different lengths with (-10, -10) / label -10, as transformers does."""
    longest = max(p.shape[1] for p in points)
    widest = max(p.shape[0] for p in points)
    if any(p.shape[0] != widest for p in points):
        raise InvalidInputError("input_points", [p.shape[0] for p in points], "the same point_batch for every image")
    if all(p.shape[1] == longest for p in points):
        return points, labels
    if labels is None:
        raise InvalidInputError("input_labels", None, "labels when point lists have different lengths")
    pad = spec.LABEL_IGNORED_PAD
    out_p, out_l = [], []
    for p, lab in zip(points, labels, strict=True):
        extra = longest - p.shape[1]
        out_p.append(np.concatenate([p, np.full((p.shape[0], extra, 2), pad, np.float32)], axis=1))
        out_l.append(np.concatenate([lab, np.full((lab.shape[0], extra), pad, np.int64)], axis=1))
    return out_p, out_l


def post_process_masks(
    masks: Any,
    original_sizes: Any,
    reshaped_input_sizes: Any,
    mask_threshold: float = 0.0,
    binarize: bool = True,
    pad_size: dict[str, int] | None = None,
) -> list[np.ndarray]:
    """transformers' ``post_process_masks``: per image, [C, K, h, w] logits -> [C, K, H, W]
    (bool when ``binarize``, else float32 logits)."""
    pad = pad_size or {"height": spec.IMAGE_SIZE, "width": spec.IMAGE_SIZE}
    originals = np.asarray(original_sizes).reshape(-1, 2)
    reshaped = np.asarray(reshaped_input_sizes).reshape(-1, 2)
    if len(masks) != len(originals) or len(originals) != len(reshaped):
        raise InvalidInputError("masks", len(masks), f"one entry per image ({len(originals)})")
    out = []
    for m, o, r in zip(masks, originals, reshaped, strict=True):
        sizes = ((int(o[0]), int(o[1])), (int(r[0]), int(r[1])), (pad["height"], pad["width"]))
        if binarize:
            out.append(binarize_masks(np.asarray(m), *sizes, threshold=mask_threshold))
        else:
            out.append(upscale_masks(np.asarray(m), *sizes))
    return out
