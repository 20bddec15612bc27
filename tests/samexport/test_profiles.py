"""TensorRT optimisation-profile planning (no TensorRT needed): the planned ranges cover exactly
what the runtime sends, and the limits are validated with the flag's name."""

from __future__ import annotations

import numpy as np
import pytest
from samrt import SamRuntime
from samrt.backends.tensorrt.profiles import ShapeRange, profiles_from_dict, profiles_to_dict, select_profile
from samrt.errors import InvalidInputError
from samrt.manifest import read_manifest

from samexport.tensorrt.profile_planning import INTERACTIVE_PROMPTS, plan_profiles


def test_planned_profiles_cover_what_the_runtime_sends(random_tiny_engine):
    manifest = read_manifest(random_tiny_engine)
    profiles = plan_profiles(manifest, max_prompts=32, max_points=5)
    assert len(profiles["encoder"]) == 1 and len(profiles["decoder"]) == 2
    assert profiles_from_dict(profiles_to_dict(profiles["decoder"])) == profiles["decoder"]
    runtime = SamRuntime.load(random_tiny_engine, backend="onnxruntime")
    image = np.zeros((60, 80, 3), np.uint8)
    embedding = runtime.embed(image)
    encoder_shapes = {"pixel_values": runtime.processor(image)["pixel_values"].shape}
    assert select_profile(profiles["encoder"], encoder_shapes) == 0

    def profile_for(n, points, box):
        feeds = runtime.decoder_feeds(embedding, np.ones((n, points, 2)) if points else None, None,
                                      [[1, 1, 20, 20]] * n if box else None, None)
        return select_profile(profiles["decoder"], {k: v.shape for k, v in feeds.items()})

    assert profile_for(1, 1, False) == 0  # one click: the interactive profile
    assert profile_for(INTERACTIVE_PROMPTS, 5, True) == 0
    assert profile_for(INTERACTIVE_PROMPTS + 1, 1, False) == 1
    assert profile_for(32, 5, True) == 1  # 5 points + 2 box corners
    assert profile_for(33, 1, False) is None  # the runner splits it
    assert profile_for(1, 6, True) is None  # the runner refuses it, naming --max-points
    batch = profiles["decoder"][1]["input_points"]
    assert batch.opt == (32, 2, 2) and profiles["decoder"][0]["input_points"].opt == (1, 2, 2)


def test_small_max_prompts_gives_one_profile(random_tiny_engine):
    profiles = plan_profiles(read_manifest(random_tiny_engine), max_prompts=2, max_points=1)
    assert len(profiles["decoder"]) == 1
    assert profiles["decoder"][0]["has_mask_input"].max == (2,)


@pytest.mark.parametrize(("limits", "flag"), [({"max_prompts": 0}, "--max-prompts"), ({"max_points": -1}, "--max-points"),
                                              ({"max_batch": 1000}, "--max-batch"),
                                              ({"max_prompts": True}, "--max-prompts")])
def test_limits_are_validated(random_tiny_engine, limits, flag):
    with pytest.raises(InvalidInputError, match=flag):
        plan_profiles(read_manifest(random_tiny_engine), **limits)


def test_shape_ranges_are_validated():
    assert ShapeRange(min=(1, 2), opt=(1, 2), max=(4, 2)).contains((3, 2))
    assert not ShapeRange(min=(1, 2), opt=(1, 2), max=(4, 2)).contains((3, 2, 1))
    with pytest.raises(InvalidInputError):
        ShapeRange(min=(2,), opt=(1,), max=(4,))
    with pytest.raises(InvalidInputError):
        ShapeRange(min=(1,), opt=(1, 1), max=(4,))
