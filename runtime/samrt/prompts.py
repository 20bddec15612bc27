"""Prompt assembly for the decoder graph, in NumPy: user points, labels and boxes in
original-image pixels -> the graph's ``input_points`` [N, P, 2] (float32, in the resized frame)
and ``input_labels`` [N, P] (int32). A box becomes two corner points labelled 2 and 3 after the
points; a prompt without a box gets SAM's pad point (0, 0) labelled -1, as transformers' and
Meta's prompt encoders do. The label sets are :mod:`samrt.spec`'s; the checks here are shared
with :class:`samrt.SamProcessor`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import spec
from .checks import rectangular_array
from .errors import InvalidInputError
from .processing import check_boxes, check_coordinates, check_labels, finite_array, normalize_coordinates

__all__ = ["decoder_prompts"]


def decoder_prompts(points: Any, labels: Any, boxes: Any, *, original_size: tuple[int, int],
                    image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_points float32 [N, P, 2], input_labels int32 [N, P]) for N objects.

    points [N, P, 2] or [P, 2] (x, y); labels [N, P] of :data:`samrt.spec.POINT_LABELS` (default
    all foreground); boxes [N, 4] or [4] (x0, y0, x1, y1); at least one of points and boxes.
    InvalidInputError names the argument otherwise.
    """
    coords_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    n = None
    if points is not None:
        pts = finite_array(points, "points", allow_empty=True)
        if pts.ndim == 2:
            pts = pts[None]
        if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[1] == 0:
            raise InvalidInputError("points", pts.shape, "[N, P, 2] or [P, 2] with P >= 1")
        n = pts.shape[0]
        check_coordinates(pts, "points", original_size)
        if labels is None:
            lab = np.ones(pts.shape[:2], np.int32)
        else:
            lab = rectangular_array(labels, "labels")
            if lab.ndim == 1 and pts.shape[0] == 1:
                lab = lab[None]
            if lab.shape != pts.shape[:2]:
                raise InvalidInputError("labels", lab.shape, f"shape {pts.shape[:2]} matching points")
            if not np.issubdtype(lab.dtype, np.integer):
                raise InvalidInputError("labels", str(lab.dtype), "an integer dtype")
            check_labels(lab, "labels", spec.POINT_LABELS)
        coords_parts.append(normalize_coordinates(pts, original_size, image_size))
        label_parts.append(lab.astype(np.int32))
    elif labels is not None:
        raise InvalidInputError("labels", "given without points", "points as well")
    if boxes is not None:
        box = finite_array(boxes, "boxes", allow_empty=True)
        if box.ndim == 1:
            box = box[None]
        if box.ndim != 2 or box.shape[-1] != 4 or box.shape[0] == 0:
            raise InvalidInputError("boxes", box.shape, "[N, 4] or [4]")
        check_boxes(box, "boxes")
        check_coordinates(box, "boxes", original_size)
        if n is not None and box.shape[0] != n:
            raise InvalidInputError("boxes", box.shape, f"{n} boxes, one per point group")
        n = box.shape[0]
        coords_parts.append(normalize_coordinates(box.reshape(-1, 2, 2), original_size, image_size))
        label_parts.append(np.tile(np.array([[spec.LABEL_BOX_TOP_LEFT, spec.LABEL_BOX_BOTTOM_RIGHT]], np.int32),
                                   (n, 1)))
    elif n is not None:
        coords_parts.append(np.zeros((n, 1, 2), np.float32))
        label_parts.append(np.full((n, 1), spec.LABEL_NOT_A_POINT, np.int32))
    if n is None:
        raise InvalidInputError("points", None, "points and/or boxes")
    return np.concatenate(coords_parts, axis=1).astype(np.float32), np.concatenate(label_parts, axis=1)
