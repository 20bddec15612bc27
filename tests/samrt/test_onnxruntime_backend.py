"""samrt.backends.onnxruntime: splitting a call into runs of at most ``max_rows`` prompts."""

from __future__ import annotations

import numpy as np
import pytest
from samrt.backends.onnxruntime import DECODER_DISABLED_OPTIMIZERS, OnnxRuntimeRunner, decoder_rows_per_call
from samrt.errors import InvalidInputError


@pytest.fixture(scope="module")
def decoder_path(tiny_engine):
    return tiny_engine / "decoder.onnx"


def _feeds(path, prompts: int, points: int, seed: int = 0) -> dict[str, np.ndarray]:
    runner = OnnxRuntimeRunner(path)
    shape = runner.inputs["image_embeddings"].shape
    rng = np.random.default_rng(seed)
    return {
        "image_embeddings": rng.normal(size=shape).astype(np.float32),
        "input_points": rng.uniform(0, 1024, (prompts, points, 2)).astype(np.float32),
        "input_labels": rng.choice(np.array([0, 1, 2, 3, -1], np.int32), (prompts, points)),
        "mask_input": rng.normal(size=(prompts, 1, 4 * shape[2], 4 * shape[3])).astype(np.float32),
        "has_mask_input": (rng.random(prompts) > 0.5).astype(np.float32),
    }


@pytest.mark.parametrize("max_rows", [1, 3, 7])
def test_split_runs_equal_one_run(decoder_path, max_rows):
    feeds = _feeds(decoder_path, prompts=7, points=3)
    whole = OnnxRuntimeRunner(decoder_path, disabled_optimizers=DECODER_DISABLED_OPTIMIZERS).infer(feeds)
    split = OnnxRuntimeRunner(decoder_path, disabled_optimizers=DECODER_DISABLED_OPTIMIZERS,
                              max_rows=max_rows).infer(feeds)
    assert set(split) == set(whole)
    for name in whole:
        assert split[name].shape == whole[name].shape
        np.testing.assert_allclose(split[name], whole[name], atol=1e-5)


def test_row_inputs_are_the_prompt_axis_and_must_agree(decoder_path):
    runner = OnnxRuntimeRunner(decoder_path, max_rows=1)
    assert sorted(runner.row_inputs) == ["has_mask_input", "input_labels", "input_points", "mask_input"]
    feeds = _feeds(decoder_path, prompts=3, points=2)
    feeds["has_mask_input"] = feeds["has_mask_input"][:2]
    with pytest.raises(InvalidInputError, match="feeds"):
        runner.infer(feeds)


def test_cpu_decoder_runs_one_prompt_per_call_gpu_whole_batches():
    assert decoder_rows_per_call(["CPUExecutionProvider"]) == 1
    assert decoder_rows_per_call(["CUDAExecutionProvider", "CPUExecutionProvider"]) == 0


def test_cpu_sessions_run_without_memory_pattern_or_spinning(decoder_path):
    # The pattern makes the second run allocate (and page-fault) a fresh block for all its
    # tensors; on the ViT-B encoder that doubled the first served call (see the runner).
    runner = OnnxRuntimeRunner(decoder_path, providers=["CPUExecutionProvider"])
    options = runner.session.get_session_options()
    assert options.enable_mem_pattern is False
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    first, second = (runner.infer(_feeds(decoder_path, prompts=2, points=2)) for _ in range(2))
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
