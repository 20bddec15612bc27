"""generate() refuses work without bound, and its errors name the argument at fault, before any
image is embedded."""

from __future__ import annotations

import time

import numpy as np
import pytest
from samrt import SamRuntime
from samrt.errors import InvalidInputError


@pytest.fixture(scope="module")
def runtime(random_tiny_engine):
    rt = SamRuntime.load(random_tiny_engine)
    yield rt
    rt.close()


IMAGE = np.zeros((48, 64, 3), np.uint8)


@pytest.mark.parametrize(("kwargs", "argument"), [
    ({"points_per_side": 10_000}, "points_per_side"),
    ({"crop_n_layers": 10}, "crop_n_layers"),
    ({"crop_n_points_downscale_factor": 8, "crop_n_layers": 2}, "crop_n_points_downscale_factor"),
    ({"point_grids": 5, "points_per_side": None}, "point_grids"),
    ({"point_grids": [[[0.5, "x"]]], "points_per_side": None}, "point_grids"),
    ({"points_per_batch": True}, "points_per_batch"),
    ({"points_per_side": 256, "crop_n_layers": 3}, "points_per_side"),
])
def test_unbounded_or_wrong_options_name_the_argument(runtime, kwargs, argument):
    started = time.monotonic()
    with pytest.raises(InvalidInputError) as info:
        runtime.generate(IMAGE, **kwargs)
    assert info.value.argument == argument, info.value
    assert time.monotonic() - started < 5  # refused up front, not after the work


def test_crop_layers_too_many_for_a_tiny_image(runtime):
    with pytest.raises(InvalidInputError) as info:
        runtime.generate(np.zeros((1, 1, 3), np.uint8), points_per_side=2, crop_n_layers=2)
    assert info.value.argument == "crop_n_layers"
