"""Connected components (8-connectivity) of a bool mask in NumPy, and segment_anything's
``remove_small_regions`` on top of them — so ``min_mask_region_area`` needs no OpenCV.

Labelling works on horizontal runs of True pixels: runs in neighbouring rows that touch
(diagonals included) are joined by vectorised min-label propagation with pointer jumping.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidInputError

__all__ = ["component_runs", "remove_small_regions"]


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, start, end (exclusive) int64 [R] of the runs of True in each row, row-major."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    step = np.diff(padded, axis=1)
    rows, starts = np.nonzero(step == 1)
    _, ends = np.nonzero(step == -1)
    return rows.astype(np.int64), starts.astype(np.int64), ends.astype(np.int64)


def component_runs(mask: np.ndarray):
    """(rows, starts, ends, component) int64 [R] for the runs of ``mask`` (bool [H, W]); runs
    of one 8-connected component share a component id in 0..C-1."""
    rows, starts, ends = _runs(mask)
    count = rows.size
    if count == 0:
        return rows, starts, ends, rows.copy()
    stride = mask.shape[1] + 2
    key_start = rows * stride + starts
    key_end = rows * stride + ends
    # Runs b in row r + 1 touch run a in row r when b.start <= a.end and b.end >= a.start.
    first = np.searchsorted(key_end, (rows + 1) * stride + starts, side="left")
    last = np.searchsorted(key_start, (rows + 1) * stride + ends, side="right")
    spans = np.maximum(last - first, 0)
    a = np.repeat(np.arange(count), spans)
    b = np.repeat(first, spans) + (np.arange(a.size) - np.repeat(np.cumsum(spans) - spans, spans))
    label = np.arange(count)
    while True:
        updated = label.copy()
        np.minimum.at(updated, a, label[b])
        np.minimum.at(updated, b, label[a])
        while True:  # pointer jumping: follow labels to their current roots
            jumped = updated[updated]
            if np.array_equal(jumped, updated):
                break
            updated = jumped
        if np.array_equal(updated, label):
            break
        label = updated
    _, component = np.unique(label, return_inverse=True)
    return rows, starts, ends, component.reshape(-1)


def _paint(shape: tuple[int, int], rows, starts, ends) -> np.ndarray:
    height, width = shape
    marks = np.zeros(height * (width + 1), dtype=np.int32)
    np.add.at(marks, rows * (width + 1) + starts, 1)
    np.add.at(marks, rows * (width + 1) + ends, -1)
    return (np.cumsum(marks).reshape(height, width + 1)[:, :width] > 0)


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str) -> tuple[np.ndarray, bool]:
    """segment_anything's ``remove_small_regions``: mode "holes" fills background components
    smaller than ``area_thresh``; mode "islands" drops foreground components smaller than it
    (keeping the largest if all are small). Returns (mask, changed)."""
    if mode not in ("holes", "islands"):
        raise InvalidInputError("mode", mode, '"holes" or "islands"')
    holes = mode == "holes"
    working = ~mask if holes else mask
    rows, starts, ends, component = component_runs(working)
    if rows.size == 0:
        return mask, False
    sizes = np.bincount(component, weights=ends - starts).astype(np.int64)
    small = sizes < area_thresh
    if not small.any():
        return mask, False
    if holes:
        filled = _paint(mask.shape, rows[small[component]], starts[small[component]], ends[small[component]])
        return mask | filled, True
    keep = ~small
    if not keep.any():
        keep[int(np.argmax(sizes))] = True
    chosen = keep[component]
    return _paint(mask.shape, rows[chosen], starts[chosen], ends[chosen]), True
