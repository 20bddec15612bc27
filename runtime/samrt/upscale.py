"""Low-res mask logits -> masks at the original image size, as transformers computes them.

transformers' ``post_process_masks`` does, per image: bilinear upscale [.., 256, 256] to the padded
frame (1024 x 1024, ``align_corners=False``), crop to the resized image (h, w), bilinear resize to
the original size (H, W), threshold. Two implementations of that, both in NumPy:

* :func:`upscale_masks` returns the float32 logits at (H, W). Only the cropped part of the padded
  frame is computed; taps and weights are PyTorch's, so values agree to ~1e-6.
* :func:`binarize_masks` returns the thresholded masks without computing most of the
  full-resolution logits. Bilinear interpolation is a convex combination of 2 x 2 source
  values, so an output pixel whose four sources all lie on one side of the threshold has that
  side's value. Only pixels next to a sign change of the (h, w) logits — the mask boundary — are
  interpolated exactly. Its cost grows with the boundary length; when most of the frame is
  boundary (noise-like logits) it falls back to the exact float path.

Result of :func:`binarize_masks` vs ``upscale_masks(...) > threshold``: identical for threshold
0.0; for another threshold a pixel may differ only where its logit lies within float32 rounding
(~1e-7 relative) of the threshold.
"""

from __future__ import annotations

import numpy as np

from . import spec
from .errors import InvalidInputError
from .parallel import parallel_map, split_range, worker_count

__all__ = ["upscale_masks", "upscale_masks_matmul", "binarize_masks", "binarize_masks_at", "linear_taps"]

# Above this share of uncertain 2x2 source blocks the exact float path is cheaper.
_MAX_UNCERTAIN_SHARE = 0.2


def linear_taps(in_size: int, out_size: int, count: int | None = None):
    """PyTorch's bilinear (align_corners=False) taps for the first ``count`` of ``out_size``
    outputs: (lo int64, hi int64, weight_lo float32, weight_hi float32), each [count]."""
    count = out_size if count is None else count
    scale = np.float32(in_size) / np.float32(out_size)
    # PyTorch's kernel evaluates scale * (i + 0.5) - 0.5 as one fused multiply-add: computing
    # it in float64 and rounding once to float32 reproduces that rounding.
    src = (np.float64(scale) * (np.arange(count, dtype=np.float64) + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0.0))
    lo = np.minimum(src.astype(np.int64), in_size - 1)
    hi = np.minimum(lo + 1, in_size - 1)
    w_hi = src - lo.astype(np.float32)
    w_lo = np.float32(1.0) - w_hi
    return lo, hi, w_lo, w_hi


def _blend(x: np.ndarray, taps, axis: int) -> np.ndarray:
    """w_lo * x[lo] + w_hi * x[hi] along ``axis`` (-1 or -2), in PyTorch's operation order."""
    lo, hi, w_lo, w_hi = taps
    shape = (-1,) if axis == -1 else (-1, 1)
    out = np.take(x, lo, axis=axis)
    out *= w_lo.reshape(shape)
    upper = np.take(x, hi, axis=axis)
    upper *= w_hi.reshape(shape)
    out += upper
    return out


def _reshaped_logits(masks: np.ndarray, reshaped_size: tuple[int, int], pad_size: tuple[int, int]) -> np.ndarray:
    """[..., h_in, w_in] -> logits of the padded-frame upscale, cropped to ``reshaped_size``."""
    h_in, w_in = masks.shape[-2:]
    # Width before height: PyTorch's 2-D kernel blends along width first.
    x = _blend(masks, linear_taps(w_in, pad_size[1], reshaped_size[1]), axis=-1)
    return _blend(x, linear_taps(h_in, pad_size[0], reshaped_size[0]), axis=-2)


def _as_float_masks(masks) -> np.ndarray:
    masks = np.asarray(masks, dtype=np.float32)
    if masks.ndim < 2:
        raise InvalidInputError("masks", f"array of shape {masks.shape}", "[..., h, w] low-res logits")
    return masks


def upscale_masks(
    masks,
    original_size: tuple[int, int],
    reshaped_size: tuple[int, int],
    pad_size: tuple[int, int] = (spec.IMAGE_SIZE, spec.IMAGE_SIZE),
) -> np.ndarray:
    """Low-res logits [..., h, w] -> float32 logits at the original size [..., H, W]."""
    x = _reshaped_logits(_as_float_masks(masks), reshaped_size, pad_size)
    rh, rw = reshaped_size
    x = _blend(x, linear_taps(rw, original_size[1]), axis=-1)
    return _blend(x, linear_taps(rh, original_size[0]), axis=-2)


def binarize_masks(
    masks,
    original_size: tuple[int, int],
    reshaped_size: tuple[int, int],
    pad_size: tuple[int, int] = (spec.IMAGE_SIZE, spec.IMAGE_SIZE),
    threshold: float = 0.0,
) -> np.ndarray:
    """Low-res logits [..., h, w] -> bool masks [..., H, W]: ``upscale_masks(...) > threshold``,
    computed exactly only along mask boundaries (see the module docstring)."""
    return binarize_masks_at(masks, original_size, reshaped_size, pad_size, thresholds=(threshold,))[0]


def binarize_masks_at(
    masks,
    original_size: tuple[int, int],
    reshaped_size: tuple[int, int],
    pad_size: tuple[int, int] = (spec.IMAGE_SIZE, spec.IMAGE_SIZE),
    *,
    thresholds: tuple[float, ...],
) -> list[np.ndarray]:
    """:func:`binarize_masks` at several thresholds (e.g. for stability scores), sharing the
    upscale to the resized frame: one bool [..., H, W] per threshold."""
    masks = _as_float_masks(masks)
    lead = masks.shape[:-2]
    flat = masks.reshape(-1, *masks.shape[-2:])
    height, width = original_size
    outs = [np.empty((flat.shape[0], height, width), dtype=bool) for _ in thresholds]
    rows = linear_taps(reshaped_size[0], height)
    cols = linear_taps(reshaped_size[1], width)
    # The width blend of the first stage is shared; the rest runs per band of output rows.
    wide = _blend(flat, linear_taps(flat.shape[-1], pad_size[1], reshaped_size[1]), axis=-1)
    first_rows = linear_taps(flat.shape[-2], pad_size[0], reshaped_size[0])

    def run(band: tuple[int, int]) -> None:
        i0, i1 = band
        band_rows = tuple(t[i0:i1] for t in rows)
        s0, s1 = int(band_rows[0][0]), int(band_rows[1][-1]) + 1
        small = _blend(wide, tuple(t[s0:s1] for t in first_rows), axis=-2)
        local_rows = (band_rows[0] - s0, band_rows[1] - s0, band_rows[2], band_rows[3])
        for out, threshold in zip(outs, thresholds, strict=True):
            out[:, i0:i1] = _binarize(small, local_rows, cols, np.float32(threshold))

    if flat.shape[0] and height and width:
        parallel_map(run, split_range(height, worker_count()))
    return [out.reshape(*lead, height, width) for out in outs]


def _binarize(small: np.ndarray, rows, cols, threshold: np.float32) -> np.ndarray:
    """Logits [M, h, w] at the resized frame -> bool [M, len(rows), len(cols)] (the work of
    :func:`binarize_masks` for one band of output rows; ``rows`` index into ``small``)."""
    above = small > threshold
    # A source block (r, c) is certain when its 2x2 corners (r|r+1, c|c+1, clamped) agree.
    down = np.concatenate([above[:, 1:], above[:, -1:]], axis=1)
    uncertain = above != down
    uncertain[:, :, :-1] |= uncertain[:, :, 1:]
    uncertain[:, :, :-1] |= above[:, :, :-1] != above[:, :, 1:]
    if np.count_nonzero(uncertain) > _MAX_UNCERTAIN_SHARE * uncertain.size:
        return _blend(_blend(small, cols, axis=-1), rows, axis=-2) > threshold
    out = np.take(np.take(above, cols[0], axis=-1), rows[0], axis=-2)
    _fix_boundary(out, small, np.flatnonzero(uncertain), rows, cols, threshold)
    return out


def _runs(lo: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """For each source index s: the first output index whose lo tap is s, how many there are,
    and the longest such run."""
    start = np.searchsorted(lo, np.arange(size), side="left")
    count = np.searchsorted(lo, np.arange(size), side="right") - start
    return start, count, int(count.max(initial=0))


def _fix_boundary(out, small, flat_blocks, rows, cols, threshold) -> None:
    """Interpolate exactly every output pixel whose top-left source lies in an uncertain block.

    out: bool [M, H, W], written in place; small: float32 [M, h, w]; flat_blocks: flat indices
    into [M, h, w] of the uncertain blocks."""
    if flat_blocks.size == 0:
        return
    _, h, w = small.shape
    _, height, width = out.shape
    m, rest = np.divmod(flat_blocks, h * w)
    r, c = np.divmod(rest, w)
    r1, c1 = np.minimum(r + 1, h - 1), np.minimum(c + 1, w - 1)
    flat_small = small.reshape(-1)
    base = m * (h * w)
    v00, v01 = flat_small[base + r * w + c], flat_small[base + r * w + c1]
    v10, v11 = flat_small[base + r1 * w + c], flat_small[base + r1 * w + c1]
    row_start, row_count, row_run = _runs(rows[0], h)
    col_start, col_count, col_run = _runs(cols[0], w)
    row_start, row_count = row_start[r], row_count[r]
    col_start, col_count = col_start[c], col_count[c]
    flat_out = out.reshape(-1)
    out_base = m * (height * width)
    for a in range(row_run):
        row_ok = a < row_count
        i = np.minimum(row_start + a, height - 1)
        wr_lo, wr_hi = rows[2][i], rows[3][i]
        for b in range(col_run):
            ok = row_ok & (b < col_count)
            j = np.minimum(col_start + b, width - 1)
            wc_lo, wc_hi = cols[2][j], cols[3][j]
            # PyTorch's order: blend along width, then along height.
            value = (v00 * wc_lo + v01 * wc_hi) * wr_lo + (v10 * wc_lo + v11 * wc_hi) * wr_hi
            target = (out_base + i * width + j)[ok]
            flat_out[target] = value[ok] > threshold


def _tap_matrix(taps, in_size: int) -> np.ndarray:
    """The bilinear taps of :func:`linear_taps` as a float32 [len(taps), in_size] matrix."""
    lo, hi, w_lo, w_hi = taps
    matrix = np.zeros((lo.size, in_size), np.float32)
    np.add.at(matrix, (np.arange(lo.size), lo), w_lo)
    np.add.at(matrix, (np.arange(lo.size), hi), w_hi)
    return matrix


def _composed_matrix(in_size: int, pad: int, reshaped: int, out_size: int) -> np.ndarray:
    """float32 [out_size, in_size]: the two bilinear steps along one axis (upscale to the padded
    frame, crop to ``reshaped``, resize to ``out_size``) as one matrix."""
    first = _tap_matrix(linear_taps(in_size, pad, reshaped), in_size)
    return _tap_matrix(linear_taps(reshaped, out_size), reshaped) @ first


def upscale_masks_matmul(
    masks,
    original_size: tuple[int, int],
    reshaped_size: tuple[int, int],
    pad_size: tuple[int, int] = (spec.IMAGE_SIZE, spec.IMAGE_SIZE),
) -> np.ndarray:
    """:func:`upscale_masks` as two matrix products per mask (rows @ masks @ cols.T): BLAS-fast
    when the output is no larger than the resized frame, e.g. automatic mask generation on
    small images or crops. Differs from :func:`upscale_masks` by float32 rounding (~5e-7
    measured), not bit for bit."""
    masks = _as_float_masks(masks)
    rows = _composed_matrix(masks.shape[-2], pad_size[0], reshaped_size[0], original_size[0])
    cols = _composed_matrix(masks.shape[-1], pad_size[1], reshaped_size[1], original_size[1])
    return np.matmul(np.matmul(rows, masks), cols.T)
