"""The threaded resize equals one plain ``Image.resize`` call, byte for byte, for every
geometry and every filter the processor accepts (property-based), and a lazily opened image
is loaded before its strips are cropped from several threads."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from samrt import resize
from samrt.processing import preprocess_shape
from samrt.resize import resize_rgb

FILTERS = [Image.Resampling.BILINEAR, Image.Resampling.BICUBIC, Image.Resampling.LANCZOS,
           Image.Resampling.BOX, Image.Resampling.HAMMING, Image.Resampling.NEAREST]
PRIMES = [2, 3, 7, 61, 101, 499, 509, 641, 997, 1009, 1499, 2003, 2503]


def _split(image, size, resample, parts=3):
    canvas = np.zeros((size[1], size[0], 3), np.uint8)
    calls = []

    def consume(x0, y0, strip):
        pixels = np.asarray(strip)
        canvas[y0:y0 + pixels.shape[0], x0:x0 + pixels.shape[1]] = pixels
        calls.append((x0, y0))

    with mock.patch.object(resize, "worker_count", return_value=parts):
        resize_rgb(image, size, resample, consume)
    return canvas, calls


def _image(width, height, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("size", [(640, 1281), (1499, 3001), (997, 2003), (1001, 2001), (500, 1003),
                                  (2001, 999), (4000, 3000)])
def test_reported_geometries_are_exact(size):
    image = _image(*size)
    target = preprocess_shape((size[1], size[0]))[::-1]
    canvas, calls = _split(image, target, Image.Resampling.BILINEAR)
    assert len(calls) > 1  # the split really ran
    assert np.array_equal(canvas, np.asarray(image.resize(target, Image.Resampling.BILINEAR)))


side = st.one_of(st.integers(1, 2600), st.sampled_from(PRIMES))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=side, height=side, resample=st.sampled_from(FILTERS), parts=st.integers(2, 4))
def test_any_geometry_to_the_processor_frame_is_exact(width, height, resample, parts):
    """Both orientations, odd, prime and extreme aspect ratios, sizes on both sides of the
    parallel threshold: the longest edge to 1024, as the processor resizes."""
    image = _image(width, height, seed=width * 7 + height)
    target = preprocess_shape((height, width))[::-1]
    canvas, _ = _split(image, target, resample, parts)
    assert np.array_equal(canvas, np.asarray(image.resize(target, resample)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(1, 1600), height=st.integers(1, 1600), out_width=st.integers(1, 1600),
       out_height=st.integers(1, 1600), resample=st.sampled_from(FILTERS))
def test_any_geometry_to_any_size_is_exact(width, height, out_width, out_height, resample):
    """Independent scales per axis (one axis enlarged, the other reduced, or one unchanged):
    the pass order rule is exercised on both sides of its boundary."""
    image = _image(width, height, seed=width + 13 * height)
    canvas, _ = _split(image, (out_width, out_height), resample)
    assert np.array_equal(canvas, np.asarray(image.resize((out_width, out_height), resample)))


def test_threshold_neighbours_are_exact():
    for pixels in (resize._PARALLEL_MIN_PIXELS - 1, resize._PARALLEL_MIN_PIXELS, resize._PARALLEL_MIN_PIXELS + 1):
        width = 100
        height = max(1, (pixels - 1024 * 1024) // width) if pixels > 1024 * 1024 else 401
        image = _image(width, height)
        target = preprocess_shape((height, width))[::-1]
        canvas, _ = _split(image, target, Image.Resampling.BILINEAR)
        assert np.array_equal(canvas, np.asarray(image.resize(target, Image.Resampling.BILINEAR)))


def test_this_pillow_follows_a_known_pass_order():
    assert resize.pass_order_rule(Image.Resampling.BILINEAR) is not None


def test_unknown_pass_order_takes_the_single_call():
    image = _image(640, 1281)
    with mock.patch.object(resize, "pass_order_rule", return_value=None):
        canvas, calls = _split(image, (512, 1024), Image.Resampling.BILINEAR)
    assert calls == [(0, 0)]
    assert np.array_equal(canvas, np.asarray(image.resize((512, 1024), Image.Resampling.BILINEAR)))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_lazily_opened_images_are_loaded_before_the_strips(tmp_path, fmt):
    path = tmp_path / f"photo.{fmt.lower()}"
    _image(1200, 900).save(path, format=fmt)
    expected = np.asarray(Image.open(path).convert("RGB").resize((1024, 768), Image.Resampling.BILINEAR))
    for _ in range(10):
        lazy = Image.open(path)  # not loaded: its strips would decode the file from two threads
        canvas, _ = _split(lazy, (1024, 768), Image.Resampling.BILINEAR, parts=4)
        assert np.array_equal(canvas, expected)
