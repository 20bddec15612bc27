"""Image decoding of mutated files raises only InvalidInputError (fuzz harness over PNG, JPEG,
WebP and TIFF bytes); SAMRT_FUZZ_EXAMPLES raises the example count for a longer run."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from samrt.errors import InvalidInputError
from samrt.images import to_rgb_uint8

FUZZ_EXAMPLES = int(os.environ.get("SAMRT_FUZZ_EXAMPLES", "150"))
FORMATS = ["PNG", "JPEG", "WEBP", "TIFF"]


@pytest.fixture(scope="module")
def encoded():
    pixels = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    files = {}
    for fmt in FORMATS:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format=fmt)
        files[fmt] = buffer.getvalue()
    return files


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(fmt=st.sampled_from(FORMATS), data=st.data())
def test_mutated_image_files_raise_only_invalid_input(encoded, tmp_path, fmt, data):
    raw = bytearray(encoded[fmt])
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(raw) - 1))
        if data.draw(st.booleans()):
            raw[at] = data.draw(st.integers(0, 255))
        else:
            del raw[at:at + data.draw(st.integers(1, 64))]
        if not raw:
            raw = bytearray(b"\0")
    path = tmp_path / f"fuzzed.{fmt.lower()}"
    path.write_bytes(bytes(raw))
    try:
        out = to_rgb_uint8(str(path))
    except InvalidInputError:
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
