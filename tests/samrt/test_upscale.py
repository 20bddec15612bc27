"""samrt.upscale and samrt.resize: the fast paths equal the plain computations."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from samrt.resize import resize_rgb
from samrt.upscale import binarize_masks, upscale_masks

torch = pytest.importorskip("torch")

SIZES = [((1, 1), (1, 1)), ((2, 4000), (1, 1024)), ((480, 640), (768, 1024)), ((1500, 2250), (683, 1024)),
         ((333, 517), (660, 1024)), ((3000, 4000), (768, 1024)),
         ((1024, 731), (1024, 731))]  # the last: no second resize


def _smooth_logits(count: int, seed: int) -> np.ndarray:
    coarse = np.random.default_rng(seed).normal(size=(count, 9, 9)).astype(np.float32) * 8
    return upscale_masks(coarse, (256, 256), (256, 256), (256, 256))


@pytest.mark.parametrize(("original", "reshaped"), SIZES)
@pytest.mark.parametrize("threshold", [0.0, 0.7])
def test_binarize_equals_thresholded_logits(original, reshaped, threshold):
    low = _smooth_logits(3, seed=sum(original))
    logits = upscale_masks(low, original, reshaped)
    fast = binarize_masks(low, original, reshaped, threshold=threshold)
    assert fast.dtype == np.bool_ and fast.shape == (3, *original)
    differ = fast != (logits > threshold)
    # Identical at 0; elsewhere only within float32 rounding of the threshold.
    assert not differ[np.abs(logits - threshold) > 1e-6].any()
    if threshold == 0.0:
        assert not differ.any()


def test_binarize_matches_torch_interpolate_on_blobs():
    low = _smooth_logits(2, seed=3)
    original, reshaped = (1500, 2250), (683, 1024)
    t = torch.nn.functional.interpolate(torch.from_numpy(low)[None], (1024, 1024), mode="bilinear",
                                        align_corners=False)[..., :683, :1024]
    ref = torch.nn.functional.interpolate(t, original, mode="bilinear", align_corners=False)[0].numpy()
    fast = binarize_masks(low, original, reshaped)
    assert not (fast != (ref > 0))[np.abs(ref) > 1e-5].any()


def test_binarize_noise_falls_back_and_keeps_shape():
    low = np.random.default_rng(0).normal(size=(1, 2, 256, 256)).astype(np.float32)
    fast = binarize_masks(low, (700, 500), (1024, 731))
    assert fast.shape == (1, 2, 700, 500)
    assert np.array_equal(fast, upscale_masks(low, (700, 500), (1024, 731)) > 0)


@pytest.mark.parametrize("resample", [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC,
                                      Image.Resampling.LANCZOS, Image.Resampling.NEAREST])
@pytest.mark.parametrize("size", [(1500, 2250), (3001, 1999), (1024, 1024), (480, 640), (200, 200), (37, 701)])
def test_threaded_resize_is_bit_identical_to_pillow(size, resample):
    rng = np.random.default_rng(size[0])
    image = Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    target = (1024, int(size[0] * 1024 / size[1] + 0.5))
    canvas = np.zeros((target[1], target[0], 3), np.uint8)

    def consume(x0, y0, strip):
        pixels = np.asarray(strip)
        canvas[y0:y0 + pixels.shape[0], x0:x0 + pixels.shape[1]] = pixels

    resize_rgb(image, target, resample, consume)
    assert np.array_equal(canvas, np.asarray(image.resize(target, resample=resample)))


@pytest.mark.parametrize(("original", "reshaped"), SIZES[:5])
def test_matmul_upscale_is_within_float_rounding(original, reshaped):
    from samrt.upscale import upscale_masks_matmul

    low = np.random.default_rng(1).normal(size=(2, 256, 256)).astype(np.float32) * 3
    assert np.abs(upscale_masks_matmul(low, original, reshaped) - upscale_masks(low, original, reshaped)).max() <= 1e-5


@pytest.mark.parametrize(("in_size", "out_size", "count"),
                         [(256, 1024, 683), (256, 1024, 1024), (256, 1024, 1), (64, 128, 128), (5, 15, 13)])
@pytest.mark.parametrize("axis", [-1, -2])
def test_phase_blend_is_bit_identical_to_gathers_on_any_band(in_size, out_size, count, axis):
    from samrt.upscale import _BlendPlan, _gather_blend, _integer_factor, linear_taps

    rng = np.random.default_rng(count)
    x = rng.normal(size=(2, in_size, in_size)).astype(np.float32) * 5
    taps = linear_taps(in_size, out_size, count)
    plan = _BlendPlan(taps, _integer_factor(in_size, out_size))
    assert plan.runs or count < 3 * out_size // in_size, "an integer upscale must take the strided path"
    full = _gather_blend(x, taps, axis)
    assert np.array_equal(plan.apply(x, axis), full)
    for start, stop in [(0, 1), (count // 3, count), (count // 5, count // 2 + 1)]:
        if stop <= start:
            continue
        # A band needs only its own source rows/columns: pass a slice starting at its first.
        lo_src, hi_src = int(taps[0][start]), int(taps[1][stop - 1]) + 1
        part = x[..., lo_src:hi_src] if axis == -1 else x[..., lo_src:hi_src, :]
        got = plan.apply(part, axis, start, stop, source_offset=lo_src)
        want = full[..., start:stop] if axis == -1 else full[..., start:stop, :]
        assert np.array_equal(got, want)


def test_binarize_is_the_same_in_many_bands(monkeypatch):
    import samrt.upscale as upscale

    low = _smooth_logits(3, seed=11)
    original, reshaped = (1500, 2250), (683, 1024)
    whole = binarize_masks(low, original, reshaped, threshold=0.3)
    monkeypatch.setattr(upscale, "_BAND_BYTES", 1 << 14)
    assert upscale._band_count(3 * 1500 * 2250) > 100
    assert np.array_equal(binarize_masks(low, original, reshaped, threshold=0.3), whole)


def test_reused_scratch_never_leaks_into_results():
    """The band temporaries live in per-thread reused buffers: a result must not change when
    the next call (another size, another threshold) reuses them."""
    first_low = _smooth_logits(3, seed=21)
    first = binarize_masks(first_low, (1500, 2250), (683, 1024))
    kept = first.copy()
    for original, reshaped in [((333, 517), (660, 1024)), ((1500, 2250), (683, 1024))]:
        binarize_masks(_smooth_logits(2, seed=22), original, reshaped, threshold=0.5)
    assert np.array_equal(first, kept)
    assert np.array_equal(first, upscale_masks(first_low, (1500, 2250), (683, 1024)) > 0)


def test_scratch_stays_bounded_for_many_masks_on_a_small_image(monkeypatch):
    """Bands bound the float32 resized frame too: 24 masks shrinking from a 1024 x 1024 frame
    to 64 x 64 once took a 100 MB frame in one band, kept in the thread's buffers for good."""
    import samrt.parallel as parallel
    import samrt.upscale as upscale

    monkeypatch.setattr(upscale, "worker_count", lambda: 1)
    monkeypatch.setattr(parallel, "worker_count", lambda: 1)  # bands run here, on this thread
    upscale._scratch.__dict__.pop("buffers", None)
    low = np.random.default_rng(5).normal(size=(24, 256, 256)).astype(np.float32)
    for scale in (3.0, 0.001):  # noise-like (exact path) and near-constant (boundary path)
        masks = binarize_masks(low * scale + 0.5, (64, 64), (1024, 1024))
        assert np.array_equal(masks, upscale_masks(low * scale + 0.5, (64, 64), (1024, 1024)) > 0)
    largest = max(buffer.nbytes for buffer in upscale._scratch.buffers.values())
    assert largest <= 2 * upscale._BAND_BYTES


def test_cached_axis_matrices_are_read_only_and_reused():
    """upscale_masks_matmul's per-size matrices are cached (automatic mask generation reuses them
    for every batch); a caller must not be able to poison the cache by writing into one."""
    from samrt.upscale import _composed_matrix, upscale_masks_matmul

    _composed_matrix.cache_clear()
    first = _composed_matrix(256, 1024, 768, 300)
    assert _composed_matrix(256, 1024, 768, 300) is first
    with pytest.raises(ValueError):
        first[0, 0] = 1.0
    masks = np.random.default_rng(1).normal(size=(2, 256, 256)).astype(np.float32)
    cold = upscale_masks_matmul(masks, (300, 400), (768, 1024))
    warm = upscale_masks_matmul(masks, (300, 400), (768, 1024))
    np.testing.assert_array_equal(cold, warm)
