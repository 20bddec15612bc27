"""samrt.backends.onnxruntime: splitting a call into runs of at most ``max_rows`` prompts,
and sharing those runs over threads."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from samrt.backends.onnxruntime import (
    DECODER_DISABLED_OPTIMIZERS,
    MAX_ROW_WORKERS,
    OnnxRuntimeRunner,
    decoder_row_workers,
    decoder_rows_per_call,
    default_providers,
    usable_cores,
)
from samrt.backends.rows import allocate_outputs
from samrt.errors import InferenceError, InvalidInputError


@pytest.fixture(scope="module")
def decoder_path(tiny_engine):
    return tiny_engine / "decoder.onnx"


def _feeds(path, prompts: int, points: int, seed: int = 0) -> dict[str, np.ndarray]:
    runner = OnnxRuntimeRunner.from_path(path)
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
    whole = OnnxRuntimeRunner.from_path(decoder_path, disabled_optimizers=DECODER_DISABLED_OPTIMIZERS).infer(feeds)
    split = OnnxRuntimeRunner.from_path(decoder_path, disabled_optimizers=DECODER_DISABLED_OPTIMIZERS,
                              max_rows=max_rows).infer(feeds)
    assert set(split) == set(whole)
    for name in whole:
        assert split[name].shape == whole[name].shape
        np.testing.assert_allclose(split[name], whole[name], atol=1e-5)


def test_row_inputs_are_the_prompt_axis_and_must_agree(decoder_path):
    runner = OnnxRuntimeRunner.from_path(decoder_path, max_rows=1)
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
    runner = OnnxRuntimeRunner.from_path(decoder_path, providers=["CPUExecutionProvider"])
    options = runner.session.get_session_options()
    assert options.enable_mem_pattern is False
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    first, second = (runner.infer(_feeds(decoder_path, prompts=2, points=2)) for _ in range(2))
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


@pytest.mark.parametrize("workers", [2, 3])
def test_runs_shared_over_threads_equal_one_run(decoder_path, workers):
    feeds = _feeds(decoder_path, prompts=7, points=3, seed=1)
    whole = OnnxRuntimeRunner.from_path(decoder_path, disabled_optimizers=DECODER_DISABLED_OPTIMIZERS).infer(feeds)
    runner = OnnxRuntimeRunner.from_path(decoder_path, disabled_optimizers=DECODER_DISABLED_OPTIMIZERS, max_rows=1,
                               row_workers=workers)
    shared = runner.infer(feeds)
    assert runner._row_session.get_session_options().intra_op_num_threads == 1
    for name in whole:
        assert shared[name].shape == whole[name].shape
        np.testing.assert_allclose(shared[name], whole[name], atol=1e-5)
    first = {name: (value[:1] if name in runner.row_inputs else value) for name, value in feeds.items()}
    single = runner.infer(first)  # one run: the first session
    np.testing.assert_allclose(single["iou_scores"][0], whole["iou_scores"][0], atol=1e-5)


def test_shared_runs_take_turns_on_several_threads(decoder_path, monkeypatch):
    runner = OnnxRuntimeRunner.from_path(decoder_path, max_rows=2, row_workers=2)
    seen: list[tuple[int, int]] = []
    run = runner._run
    feeds = _feeds(decoder_path, prompts=9, points=1)
    firsts = [float(feeds["input_points"][start, 0, 0]) for start in range(9)]

    def slow_run(session, part, into):
        time.sleep(0.02)  # long enough that the pool thread is up before the caller is done
        seen.append((firsts.index(float(part["input_points"][0, 0, 0])), threading.get_ident()))
        return run(session, part, into)

    monkeypatch.setattr(runner, "_run", slow_run)
    runner.infer(feeds)
    assert sorted(start for start, _ in seen) == [0, 2, 4, 6, 8]
    assert len({thread for _, thread in seen}) == 2


def test_a_failing_shared_run_raises_and_the_runner_stays_usable(decoder_path, monkeypatch):
    runner = OnnxRuntimeRunner.from_path(decoder_path, max_rows=1, row_workers=2)
    feeds = _feeds(decoder_path, prompts=5, points=2)
    expected = runner.infer(feeds)
    run = runner._run
    fourth = feeds["input_points"][3]

    def failing(session, part, into):
        if np.array_equal(part["input_points"][0], fourth):
            raise InferenceError("kernel failed", graph="decoder.onnx")
        return run(session, part, into)

    monkeypatch.setattr(runner, "_run", failing)
    with pytest.raises(InferenceError, match="kernel failed"):
        runner.infer(feeds)
    monkeypatch.setattr(runner, "_run", run)
    np.testing.assert_array_equal(runner.infer(feeds)["low_res_masks"], expected["low_res_masks"])
    runner.close()
    with pytest.raises(InferenceError, match="closed"):
        runner.infer(feeds)


@pytest.mark.parametrize("workers", [0, -2, 1.5, True])
def test_row_workers_must_be_a_positive_int(decoder_path, workers):
    with pytest.raises(InvalidInputError, match="row_workers"):
        OnnxRuntimeRunner.from_path(decoder_path, max_rows=1, row_workers=workers)


def test_cpu_batches_spread_over_the_usable_cores_gpu_batches_do_not():
    assert decoder_row_workers(["CPUExecutionProvider"]) == min(MAX_ROW_WORKERS, usable_cores())
    assert decoder_row_workers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == 1



@pytest.mark.parametrize("content, cap", [("max 100000\n", None), ("150000 100000\n", 2), ("50000 100000", 1),
                                          ("garbage", None), (None, None)])
def test_usable_cores_follow_the_affinity_and_a_container_quota(tmp_path, content, cap):
    cpu_max = tmp_path / "cpu.max"
    if content is not None:
        cpu_max.write_text(content)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores(cpu_max) == (affinity if cap is None else min(affinity, cap))


def test_cuda_is_asked_for_first_where_onnxruntime_offers_it(decoder_path, monkeypatch):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime really has CUDA here: this test pretends it on a CPU-only build")
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    assert default_providers() == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    # This CPU build only pretends: onnxruntime warns and falls back to the CPU provider, and the
    # decoder runner then decides by what the session really got (one prompt per run, shared).
    with pytest.warns(UserWarning, match="CUDAExecutionProvider"):
        runner = OnnxRuntimeRunner.from_path(decoder_path)
    assert runner.providers == ["CPUExecutionProvider"]
    assert (decoder_rows_per_call(runner.providers), decoder_row_workers(runner.providers)) == (
        1, min(MAX_ROW_WORKERS, usable_cores()))


@pytest.mark.parametrize("workers", [1, 2])
def test_symbolic_trailing_output_axes_are_learnt_from_the_first_run(decoder_path, workers):
    feeds = _feeds(decoder_path, prompts=5, points=2, seed=3)
    whole = OnnxRuntimeRunner.from_path(decoder_path, disabled_optimizers=DECODER_DISABLED_OPTIMIZERS).infer(feeds)
    runner = OnnxRuntimeRunner.from_path(decoder_path, disabled_optimizers=DECODER_DISABLED_OPTIMIZERS, max_rows=2,
                               row_workers=workers)
    runner.outputs = {name: replace(o, shape=(o.shape[0], "masks", *o.shape[2:]))
                       for name, o in runner.outputs.items()}
    assert allocate_outputs(runner.outputs, 5) is None
    split = runner.infer(feeds)
    for name in whole:
        assert split[name].shape == whole[name].shape
        np.testing.assert_allclose(split[name], whole[name], atol=1e-5)
