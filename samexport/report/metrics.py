"""Accuracy metrics: tensor error statistics (through polygraphy's comparator) and mask metrics.

Tensor statistics come from polygraphy's ``SimpleCompareFunc`` (max / mean / median / p99
absolute and relative differences) so they mean what they mean in ``polygraphy run``; cosine
similarity, NaN/inf counts and the mask-level metrics (binary IoU, boundary F-score, best-mask
agreement) are ours.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ERROR_QUANTILE = 0.99


def _quiet_polygraphy() -> None:
    from polygraphy.logger import G_LOGGER

    G_LOGGER.module_severity = G_LOGGER.ERROR
    G_LOGGER.colors = False


def tensor_errors(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Error statistics of ``candidate`` against ``reference`` (same shape, any float dtype).

    Returns max/mean/p99 absolute error, max/mean relative error (polygraphy's definitions:
    |a - b| / |b|), cosine similarity of the flattened tensors and the count of non-finite
    candidate values. Non-finite values make the error statistics ``inf``.
    """
    from polygraphy.comparator import IterationResult
    from polygraphy.comparator.compare import SimpleCompareFunc

    _quiet_polygraphy()
    ref = np.ascontiguousarray(reference, dtype=np.float32)
    cand = np.ascontiguousarray(candidate, dtype=np.float32)
    nonfinite = int((~np.isfinite(cand)).sum())
    if nonfinite:
        return {"max_abs": float("inf"), "mean_abs": float("inf"), "p99_abs": float("inf"),
                "max_rel": float("inf"), "mean_rel": float("inf"), "cosine": float("nan"), "nonfinite": nonfinite}
    compare = SimpleCompareFunc(check_shapes=True, atol=float("inf"), rtol=float("inf"),
                                check_error_stat="quantile", error_quantile=ERROR_QUANTILE)
    result = compare(IterationResult({"t": ref}, runner_name="reference"),
                     IterationResult({"t": cand}, runner_name="candidate"))["t"]
    return {
        "max_abs": float(result.max_absdiff),
        "mean_abs": float(result.mean_absdiff),
        "p99_abs": float(result.quantile_absdiff),
        "max_rel": float(result.max_reldiff),
        "mean_rel": float(result.mean_reldiff),
        "cosine": cosine(ref, cand),
        "nonfinite": 0,
    }


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two flattened tensors (1.0 for two all-zero tensors)."""
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    norm = np.linalg.norm(a64) * np.linalg.norm(b64)
    if norm == 0:
        return 1.0 if not a64.any() and not b64.any() else 0.0
    return float(a64 @ b64 / norm)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of bool masks [..., H, W] -> float64 [...]; 1.0 where both are empty."""
    inter = (a & b).sum(axis=(-2, -1), dtype=np.int64)
    union = (a | b).sum(axis=(-2, -1), dtype=np.int64)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of a bool [H, W] mask with a 4-neighbour outside the mask (or on the image edge)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilation of a bool [H, W] mask by a (2r+1)^2 square: a maximum filter along each axis."""
    out = mask
    for axis in (0, 1):
        grown = out.copy()
        size = out.shape[axis]
        for shift in range(1, min(radius, size - 1) + 1):
            later, earlier = [slice(None)] * 2, [slice(None)] * 2
            later[axis], earlier[axis] = slice(shift, None), slice(None, size - shift)
            grown[tuple(later)] |= out[tuple(earlier)]
            grown[tuple(earlier)] |= out[tuple(later)]
        out = grown
    return out


def boundary_f_score(reference: np.ndarray, candidate: np.ndarray, *, tolerance: int | None = None) -> float:
    """Boundary F-measure (DAVIS' F) of two bool [H, W] masks.

    A boundary pixel counts as matched when the other mask's boundary lies within
    ``tolerance`` pixels (Chebyshev distance); default ``max(1, round(0.002 * diagonal))``.
    Precision is over the candidate's boundary, recall over the reference's. Two empty
    masks score 1.0; one empty mask scores 0.0.
    """
    ref_b, cand_b = mask_boundary(reference), mask_boundary(candidate)
    if not ref_b.any() and not cand_b.any():
        return 1.0
    if not ref_b.any() or not cand_b.any():
        return 0.0
    if tolerance is None:
        tolerance = max(1, round(0.002 * float(np.hypot(*reference.shape))))
    precision = (cand_b & _dilate(ref_b, tolerance)).sum() / cand_b.sum()
    recall = (ref_b & _dilate(cand_b, tolerance)).sum() / ref_b.sum()
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def distribution(values: Any) -> dict[str, float]:
    """min, p1, p5, mean (and count) of a 1-D sample; NaN entries are counted as failures (0)."""
    arr = np.nan_to_num(np.asarray(values, dtype=np.float64).ravel(), nan=0.0)
    if arr.size == 0:
        return {"count": 0, "min": float("nan"), "p1": float("nan"), "p5": float("nan"), "mean": float("nan")}
    return {"count": int(arr.size), "min": float(arr.min()), "p1": float(np.percentile(arr, 1)),
            "p5": float(np.percentile(arr, 5)), "mean": float(arr.mean())}
