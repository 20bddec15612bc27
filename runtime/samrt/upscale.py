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

import functools
import threading
from typing import NamedTuple

import numpy as np

from . import spec
from .errors import InvalidInputError
from .parallel import parallel_map, split_range, worker_count

__all__ = ["upscale_masks", "upscale_masks_matmul", "binarize_masks", "binarize_masks_at", "linear_taps"]

# Above this share of uncertain 2x2 source blocks the exact float path is cheaper. Measured
# (2250 x 1500, 3 masks, blob logits plus growing noise, 2 cores): at 4.9 % boundary 10.4 ms,
# exact 12.7 ms; at 9.2 % 32 ms against 14 ms; the exact path costs 12-19 ms at any share.
_MAX_UNCERTAIN_SHARE = 0.06


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


def _blend(x: np.ndarray, taps, axis: int, factor: int = 0) -> np.ndarray:
    """w_lo * x[lo] + w_hi * x[hi] along ``axis`` (-1 or -2), in PyTorch's operation order.

    factor: when the taps come from an integer upscale (e.g. 256 -> 1024: 4), see
    :class:`_BlendPlan`; 0 for any other taps."""
    return _BlendPlan(taps, factor).apply(x, axis)


class _BlendPlan:
    """How to compute :func:`_blend` for some taps.

    For the taps of an integer upscale by ``factor`` (>= 2), outputs of one phase (index mod
    factor) share their weights and step through the source one by one, so they come from
    strided slices instead of gathers (about 3x faster, the same bits); only the clamped outputs
    at the two ends are gathered. Any other taps (factor 0) are all gathered. :meth:`apply`
    computes any contiguous range of outputs, so bands of rows reuse one plan."""

    def __init__(self, taps, factor: int) -> None:
        self.taps = taps
        self.factor = factor
        self.runs: list[tuple[int, int]] = []  # (first output, count), step ``factor``
        done = np.zeros(taps[0].size, bool)
        for phase in range(factor if factor >= 2 else 0):
            k0, k1 = _regular_run(taps, phase, factor)
            if k1 - k0 >= 2:
                first = phase + factor * k0
                self.runs.append((first, k1 - k0))
                done[first:first + factor * (k1 - k0):factor] = True
        self.rest = np.flatnonzero(~done)

    def apply(self, x: np.ndarray, axis: int, start: int = 0, stop: int | None = None,
              source_offset: int = 0, *, scratch: str | None = None) -> np.ndarray:
        """Outputs [start, stop) along ``axis`` from ``x``, whose index 0 along ``axis`` is
        source index ``source_offset``.

        scratch: a name for :func:`_scratch_buffer`: the result and the temporaries then live
        in this thread's reused buffers (valid until the next call with that name), so no
        large block is allocated per call."""
        lo, hi, w_lo, w_hi = self.taps
        stop = lo.size if stop is None else stop
        if not self.runs:  # nothing strided: gather straight into the result
            band = slice(start, stop)
            return _gather_blend(x, (lo[band] - source_offset, hi[band] - source_offset, w_lo[band], w_hi[band]), axis)
        f = self.factor
        shape = _resized_shape(x.shape, axis, stop - start)
        out = _scratch_buffer(scratch, shape) if scratch else np.empty(shape, np.float32)
        for first, count in self.runs:
            k0 = max(0, -(-(start - first) // f))
            k1 = min(count, -(-(stop - first) // f))
            if k1 <= k0:
                continue
            g = first + f * k0
            src = int(lo[g]) - source_offset
            target = out[_along(axis, slice(g - start, g - start + f * (k1 - k0), f))]
            np.multiply(x[_along(axis, slice(src, src + k1 - k0))], w_lo[g], out=target)
            upper = x[_along(axis, slice(src + 1, src + 1 + k1 - k0))]
            if scratch:
                product = _scratch_buffer(scratch + "/product", upper.shape)
                np.multiply(upper, w_hi[g], out=product)
                target += product
            else:
                target += upper * w_hi[g]
        rest = self.rest[np.searchsorted(self.rest, start):np.searchsorted(self.rest, stop)]
        if rest.size:
            taps = (lo[rest] - source_offset, hi[rest] - source_offset, w_lo[rest], w_hi[rest])
            out[_along(axis, rest - start)] = _gather_blend(x, taps, axis)
        return out


_scratch = threading.local()


def _scratch_buffer(name: str, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """An array of ``shape`` and ``dtype`` in this thread's buffer ``name``, reused across calls
    (contents undefined). Each thread keeps the largest size it has needed per name: a few MB
    for the band sizes :func:`binarize_masks_at` uses, whatever the image."""
    buffers = _scratch.__dict__.setdefault("buffers", {})
    size = int(np.prod(shape))
    buffer = buffers.get((name, np.dtype(dtype)))
    if buffer is None or buffer.size < size:
        buffer = buffers[(name, np.dtype(dtype))] = np.empty(size, dtype)
    return buffer[:size].reshape(shape)


def _gather_blend(x: np.ndarray, taps, axis: int, *, scratch: str | None = None) -> np.ndarray:
    """:func:`_blend` by gathers, for any taps. scratch: as in :meth:`_BlendPlan.apply`."""
    lo, hi, w_lo, w_hi = taps
    shape = (-1,) if axis == -1 else (-1, 1)
    if scratch:
        size = _resized_shape(x.shape, axis, lo.size)
        out = np.take(x, lo, axis=axis, out=_scratch_buffer(scratch, size), mode="clip")
        upper = np.take(x, hi, axis=axis, out=_scratch_buffer(scratch + "/upper", size), mode="clip")
    else:
        out = np.take(x, lo, axis=axis)
        upper = np.take(x, hi, axis=axis)
    out *= w_lo.reshape(shape)
    upper *= w_hi.reshape(shape)
    out += upper
    return out


def _integer_factor(in_size: int, out_size: int) -> int:
    """out_size / in_size when that is a whole number > 1, else 0 (no phase structure)."""
    return out_size // in_size if in_size and out_size % in_size == 0 and out_size > in_size else 0


def _resized_shape(shape: tuple[int, ...], axis: int, size: int) -> tuple[int, ...]:
    resized = list(shape)
    resized[axis] = size
    return tuple(resized)


def _along(axis: int, index) -> tuple:
    return (Ellipsis, index) if axis == -1 else (Ellipsis, index, slice(None))


def _regular_run(taps, phase: int, factor: int) -> tuple[int, int]:
    """The longest run [k0, k1) of outputs phase + factor * k whose taps are (s + k, s + k + 1)
    with the weights of the run's first output (the unclamped interior of an integer upscale)."""
    lo, hi, w_lo, w_hi = (t[phase::factor] for t in taps)
    if lo.size == 0:
        return 0, 0
    k = np.arange(lo.size)
    mid = lo.size // 2
    regular = ((lo - k == lo[mid] - mid) & (hi == lo + 1)
               & (w_lo == w_lo[mid]) & (w_hi == w_hi[mid]))
    if not regular[mid]:
        return 0, 0
    k0 = mid - int(np.argmin(regular[mid::-1])) + 1 if not regular[:mid + 1].all() else 0
    k1 = mid + int(np.argmin(regular[mid:])) if not regular[mid:].all() else lo.size
    return k0, k1


def _reshaped_logits(masks: np.ndarray, reshaped_size: tuple[int, int], pad_size: tuple[int, int]) -> np.ndarray:
    """[..., h_in, w_in] -> logits of the padded-frame upscale, cropped to ``reshaped_size``."""
    h_in, w_in = masks.shape[-2:]
    # Width before height: PyTorch's 2-D kernel blends along width first.
    x = _blend(masks, linear_taps(w_in, pad_size[1], reshaped_size[1]), axis=-1,
               factor=_integer_factor(w_in, pad_size[1]))
    return _blend(x, linear_taps(h_in, pad_size[0], reshaped_size[0]), axis=-2,
                  factor=_integer_factor(h_in, pad_size[0]))


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
    x = _blend(x, linear_taps(rw, original_size[1]), axis=-1, factor=_integer_factor(rw, original_size[1]))
    return _blend(x, linear_taps(rh, original_size[0]), axis=-2, factor=_integer_factor(rh, original_size[0]))


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


def _int_pair(size) -> tuple[int, int]:
    return int(size[0]), int(size[1])


class _Plan(NamedTuple):
    """Everything :func:`binarize_masks_at` derives from the sizes alone (read-only arrays)."""

    rows: tuple  # linear_taps(h, H): output rows from the resized frame
    cols: tuple  # linear_taps(w, W)
    first_rows: tuple  # linear_taps(h_in, pad_h, h): resized-frame rows from the low-res logits
    col_plan: _BlendPlan  # low-res columns -> resized-frame columns
    row_plan: _BlendPlan
    col_runs: tuple  # _runs(cols[0], w)
    same_size: bool  # original size == resized size


@functools.lru_cache(maxsize=16)
def _binarize_plan(low_res: tuple[int, int], original_size: tuple[int, int],
                   reshaped_size: tuple[int, int], pad_size: tuple[int, int]) -> _Plan:
    """The taps and blend plans for one combination of sizes; a service sees few, so they are
    built once (about 0.5 ms each time otherwise)."""
    (h_in, w_in), (height, width) = low_res, original_size
    rows = linear_taps(reshaped_size[0], height)
    cols = linear_taps(reshaped_size[1], width)
    first_cols = linear_taps(w_in, pad_size[1], reshaped_size[1])
    first_rows = linear_taps(h_in, pad_size[0], reshaped_size[0])
    plan = _Plan(rows, cols, first_rows,
                 _BlendPlan(first_cols, _integer_factor(w_in, pad_size[1])),
                 _BlendPlan(first_rows, _integer_factor(h_in, pad_size[0])),
                 _runs(cols[0], reshaped_size[1]), original_size == reshaped_size)
    for taps in (rows, cols, first_cols, first_rows, plan.col_runs, (plan.col_plan.rest, plan.row_plan.rest)):
        for array in taps:
            array.flags.writeable = False
    return plan


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
    height, width = _int_pair(original_size)
    outs = [np.empty((flat.shape[0], height, width), dtype=bool) for _ in thresholds]
    reshaped = _int_pair(reshaped_size)
    plan = _binarize_plan(flat.shape[-2:], (height, width), reshaped, _int_pair(pad_size))
    rows, cols, first_rows = plan.rows, plan.cols, plan.first_rows

    def run(band: tuple[int, int]) -> None:
        # Everything per band of output rows, from the few source rows it needs: the
        # temporaries stay small enough to be reused from the heap and mostly cached.
        i0, i1 = band
        band_rows = tuple(t[i0:i1] for t in rows)
        s0, s1 = int(band_rows[0][0]), int(band_rows[1][-1]) + 1
        small_rows = tuple(t[s0:s1] for t in first_rows)
        r0, r1 = int(small_rows[0][0]), int(small_rows[1][-1]) + 1
        wide = plan.col_plan.apply(flat[:, r0:r1], -1, scratch="wide")
        small = plan.row_plan.apply(wide, -2, s0, s1, source_offset=r0, scratch="small")
        if plan.same_size:  # the second resize is the identity: weights 1 and 0
            for out, threshold in zip(outs, thresholds, strict=True):
                np.greater(small[:, :i1 - i0], np.float32(threshold), out=out[:, i0:i1])
            return
        local_rows = (band_rows[0] - s0, band_rows[1] - s0, band_rows[2], band_rows[3])
        for out, threshold in zip(outs, thresholds, strict=True):
            _binarize(small, local_rows, cols, np.float32(threshold), out=out, first_row=i0, col_runs=plan.col_runs)

    if flat.shape[0] and height and width:
        # Bands bound the output and the float32 resized frame they work on: the latter is the
        # larger one when many masks shrink to a small image (64 prompts x 3 masks on a 64 x 64
        # image: 805 MB of frame for 0.8 MB of output), and it sets the per-thread buffers.
        frame_bytes = 4 * flat.shape[0] * reshaped[0] * reshaped[1]
        parallel_map(run, split_range(height, _band_count(max(flat.shape[0] * height * width, frame_bytes))))
    return [out.reshape(*lead, height, width) for out in outs]


# Bytes per band, all masks: of bool output, or of the float32 resized frame where that is
# larger. Each band runs ~40 NumPy calls; with two threads, more and smaller bands measured
# slower (2250 x 1500, 3 masks, 2 cores: 4 MB bands 8.6-10 ms, 8 MB bands, i.e. one per thread,
# 6.9-7.8 ms; 1 MB bands 15-17 ms), while one thread barely cared. The per-thread scratch
# buffers grow with the band, to a few times its size.
_BAND_BYTES = 8 << 20


def _band_count(work_bytes: int) -> int:
    """How many bands of rows to cut the work into: a multiple of the worker count."""
    workers = worker_count()
    return workers * max(1, -(-work_bytes // (_BAND_BYTES * workers)))


def _binarize(small: np.ndarray, rows, cols, threshold: np.float32, *, out: np.ndarray, first_row: int,
              col_runs) -> None:
    """Logits [M, h, w] at the resized frame -> ``out[:, first_row:first_row + len(rows)]``
    (bool [M, H, W], C-contiguous): the work of :func:`binarize_masks` for one band of output
    rows; ``rows`` index into ``small``."""
    target = out[:, first_row:first_row + rows[0].size]
    # The band's bool temporaries live in reused per-thread buffers too: under the heap limits
    # of samrt.memory, a fresh 1 MB array is page-faulted in on every call.
    above = np.greater(small, threshold, out=_scratch_buffer("above", small.shape, bool))
    # A source block (r, c) is certain when its 2x2 corners (r|r+1, c|c+1, clamped) agree:
    # its two vertical pairs (columns c and c+1) and its top horizontal pair do.
    vertical = _scratch_buffer("vertical", small.shape, bool)
    np.not_equal(above[:, :-1], above[:, 1:], out=vertical[:, :-1])
    vertical[:, -1] = False
    uncertain = _scratch_buffer("uncertain", small.shape, bool)
    inner = uncertain[:, :, :-1]
    np.not_equal(above[:, :, :-1], above[:, :, 1:], out=inner)
    np.bitwise_or(inner, vertical[:, :, :-1], out=inner)
    np.bitwise_or(inner, vertical[:, :, 1:], out=inner)
    uncertain[:, :, -1] = vertical[:, :, -1]
    if np.count_nonzero(uncertain) > _MAX_UNCERTAIN_SHARE * uncertain.size:
        _threshold_exactly(small, rows, cols, threshold, target)
        return
    wide_above = np.take(above, cols[0], axis=-1, mode="clip",
                         out=_scratch_buffer("wide_above", (*above.shape[:-1], cols[0].size), bool))
    for mask in range(target.shape[0]):
        # One mask's band is contiguous, so take writes it in place (a strided ``out`` would
        # make numpy fill a temporary copy first); mode="clip" skips the bounds pass.
        np.take(wide_above[mask], rows[0], axis=0, out=target[mask], mode="clip")
    _fix_boundary(out, first_row, small, np.flatnonzero(uncertain), rows, cols, threshold, col_runs)


# Bytes of one [M, rows, W] float32 step of the exact path: its temporaries (that, twice, and
# the source rows it needs widened) stay a few MB and are reused, instead of two fresh
# band-sized arrays per band. A budget in bytes, not rows, so that 64 prompts x 3 masks do not
# leave hundreds of MB in the per-thread buffers.
_EXACT_STEP_BYTES = 4 << 20


def _threshold_exactly(small: np.ndarray, rows, cols, threshold: np.float32, target: np.ndarray) -> None:
    """``target[:] = upscale(small) > threshold`` with every output pixel interpolated (the
    path for noise-like logits, where most blocks are uncertain), a few rows at a time
    (:data:`_EXACT_STEP_BYTES` per step)."""
    step_rows = max(1, _EXACT_STEP_BYTES // (4 * small.shape[0] * max(1, cols[0].size)))
    for k0 in range(0, rows[0].size, step_rows):
        k1 = min(k0 + step_rows, rows[0].size)
        s0, s1 = int(rows[0][k0]), int(rows[1][k1 - 1]) + 1
        wide = _gather_blend(small[:, s0:s1], cols, -1, scratch="exact/wide")
        step = (rows[0][k0:k1] - s0, rows[1][k0:k1] - s0, rows[2][k0:k1], rows[3][k0:k1])
        np.greater(_gather_blend(wide, step, -2, scratch="exact/rows"), threshold, out=target[:, k0:k1])


def _runs(lo: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For each source index s: the first output index whose lo tap is s, and how many there
    are (0 for a source no output starts from)."""
    start = np.searchsorted(lo, np.arange(size), side="left")
    return start, np.searchsorted(lo, np.arange(size), side="right") - start


def _fix_boundary(out, first_row, small, flat_blocks, rows, cols, threshold, col_runs) -> None:
    """Interpolate exactly every output pixel whose top-left source lies in an uncertain block.

    out: bool [M, H, W], C-contiguous, written in place from row ``first_row`` on (``rows``
    are the taps of those output rows); small: float32 [M, h, w]; flat_blocks: flat indices
    into [M, h, w] of the uncertain blocks; col_runs: ``_runs(cols[0], w)``, shared by all bands."""
    if flat_blocks.size == 0:
        return
    _, h, w = small.shape
    _, out_height, width = out.shape
    m, rest = np.divmod(flat_blocks, h * w)
    r, c = np.divmod(rest, w)
    row_start, row_count = (t[r] for t in _runs(rows[0], h))
    col_start, col_count = (t[c] for t in col_runs)
    owns_pixels = (row_count > 0) & (col_count > 0)
    if not owns_pixels.all():
        m, r, c, row_start, row_count, col_start, col_count = (
            t[owns_pixels] for t in (m, r, c, row_start, row_count, col_start, col_count))
        if m.size == 0:
            return
    # Block b owns output rows row_start[b] + [0, row_count[b]) and columns likewise. Every
    # block gets the same (largest) grid; the surplus entries repeat the block's last row or
    # column, so they rewrite a pixel with its own exact value and need no mask. Blocks run
    # along the last axis: numpy's inner loops then span all blocks, not a grid's 2-4 entries.
    i = row_start + np.minimum(np.arange(int(row_count.max()))[:, None], row_count - 1)  # [kr, B]
    j = col_start + np.minimum(np.arange(int(col_count.max()))[:, None], col_count - 1)  # [kc, B]
    r1, c1 = np.minimum(r + 1, h - 1), np.minimum(c + 1, w - 1)
    flat_small = small.reshape(-1)
    base = m * (h * w)
    wc_lo, wc_hi = cols[2][j], cols[3][j]
    # PyTorch's order: blend along width, then along height.
    top = flat_small[base + r * w + c] * wc_lo + flat_small[base + r * w + c1] * wc_hi
    bottom = flat_small[base + r1 * w + c] * wc_lo + flat_small[base + r1 * w + c1] * wc_hi
    value = top * rows[2][i][:, None] + bottom * rows[3][i][:, None]  # [kr, kc, B]
    index = (m * out_height + first_row + i)[:, None] * width + j
    out.reshape(-1)[index] = value > threshold


def _tap_matrix(taps, in_size: int) -> np.ndarray:
    """The bilinear taps of :func:`linear_taps` as a float32 [len(taps), in_size] matrix."""
    lo, hi, w_lo, w_hi = taps
    matrix = np.zeros((lo.size, in_size), np.float32)
    np.add.at(matrix, (np.arange(lo.size), lo), w_lo)
    np.add.at(matrix, (np.arange(lo.size), hi), w_hi)
    return matrix


# Cached: automatic mask generation upscales every batch of masks of an image (or crop) with the
# same two matrices, and building one (np.add.at, then a product) took ~11 ms per call, 8.7 s of
# a 93 s ViT-B run. At most 8 entries of at most out_size x 256 float32 (4 MB at 4000 pixels).
@functools.lru_cache(maxsize=8)
def _composed_matrix(in_size: int, pad: int, reshaped: int, out_size: int) -> np.ndarray:
    """float32 [out_size, in_size], read-only: the two bilinear steps along one axis (upscale to
    the padded frame, crop to ``reshaped``, resize to ``out_size``) as one matrix."""
    first = _tap_matrix(linear_taps(in_size, pad, reshaped), in_size)
    matrix = _tap_matrix(linear_taps(reshaped, out_size), reshaped) @ first
    matrix.flags.writeable = False
    return matrix


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
