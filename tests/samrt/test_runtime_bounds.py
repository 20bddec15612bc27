"""Hostile and oversized inputs to SamRuntime and SamProcessor: bounded, typed, and outputs that
stay finite; memory of a many-prompt predict bounded by its result; close() racing calls."""

from __future__ import annotations

import os
import threading
import tracemalloc

import numpy as np
import pytest
from click.testing import CliRunner
from samrt import SamProcessor, SamRuntime
from samrt.errors import InferenceError, InvalidInputError, SamError
from samrt.images import to_rgb_uint8
from samrt.runtime import ImageEmbedding

from samexport.cli import main


@pytest.fixture(scope="module")
def runtime(random_tiny_engine):
    rt = SamRuntime.load(random_tiny_engine)
    yield rt
    rt.close()


@pytest.fixture(scope="module")
def embedding(runtime):
    return runtime.embed(np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8))


@pytest.mark.parametrize("points", [[[1e38, 1e38]], [[1e300, 5.0]], [[5.0, -1e30]], [[2_000.0, 5.0]]])
def test_far_away_points_are_refused(runtime, embedding, points):
    with pytest.raises(InvalidInputError, match="points"):
        runtime.predict(embedding, points=points)


def test_points_just_outside_the_image_still_work(runtime, embedding):
    result = runtime.predict(embedding, points=[[-20.0, 100.0]], boxes=[-10.0, -10.0, 120.0, 80.0])
    assert np.isfinite(result.iou_scores).all()


def test_huge_mask_input_is_refused(runtime, embedding):
    with pytest.raises(InvalidInputError, match="mask_input"):
        runtime.predict(embedding, points=[[5.0, 5.0]], mask_input=np.full((1, 1, 256, 256), 1e39))


def test_a_nan_from_the_backend_names_the_output(random_tiny_engine, embedding, monkeypatch):
    rt = SamRuntime.load(random_tiny_engine)
    real = rt.decoder.infer

    def poisoned(feeds):
        out = real(feeds)
        out["iou_scores"][0, 0] = np.nan
        return out

    monkeypatch.setattr(rt.decoder, "infer", poisoned)
    with pytest.raises(InferenceError, match="iou_scores"):
        rt.predict(embedding, points=[[5.0, 5.0]])
    rt.close()


def test_segment_cli_refuses_far_points_in_one_sentence(random_tiny_engine, tmp_path):
    image = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(image)
    result = CliRunner().invoke(main, ["segment", str(random_tiny_engine), str(image), "--point", "1e38,5",
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.output.count("error:") == 1, result.output
    assert not (tmp_path / "out" / "masks.json").exists()


def test_ragged_labels_are_typed(runtime, embedding):
    with pytest.raises(InvalidInputError, match="labels"):
        runtime.predict(embedding, points=[[[1, 1]], [[2, 2]]], labels=[[1], [1, 1]])
    with pytest.raises(InvalidInputError, match="input_labels"):
        SamProcessor()(np.zeros((8, 8, 3), np.uint8), input_points=[[[[1, 1]], [[2, 2]]]],
                       input_labels=[[[1], [1, 1]]])


@pytest.mark.parametrize("kwargs", [{"size": {"longest_edge": "big"}}, {"size": "big"}, {"image_std": "abc"},
                                    {"image_std": [1, 1]}, {"image_mean": [0, "x", 0]}, {"rescale_factor": "x"},
                                    {"rescale_factor": 0}, {"pad_size": {"height": -1, "width": 4}},
                                    {"resample": 99}])
def test_processor_settings_are_typed(kwargs):
    with pytest.raises(InvalidInputError):
        SamProcessor(**kwargs)


def test_processor_accepts_one_number_per_channel_as_transformers():
    assert SamProcessor(image_mean=0.5, image_std=0.5).image_std.tolist() == [0.5, 0.5, 0.5]


@pytest.mark.parametrize(("field", "value"), [("original_size", (0, 0)), ("original_size", (-3, 5)),
                                              ("reshaped_input_size", (0, 0)), ("original_size", (20000, 20000)),
                                              ("original_size", "ab"), ("embeddings", [[1.0]])])
def test_image_embedding_is_checked(embedding, field, value):
    fields = {"embeddings": embedding.embeddings, "original_size": embedding.original_size,
              "reshaped_input_size": embedding.reshaped_input_size, field: value}
    with pytest.raises(InvalidInputError, match=field):
        ImageEmbedding(**fields)


def test_embedding_of_another_engine_is_refused(runtime, embedding):
    wrong = ImageEmbedding(embeddings=np.zeros((1, 8, 16, 16), np.float32), original_size=(64, 96),
                           reshaped_input_size=(683, 1024))
    with pytest.raises(InvalidInputError, match="embedding"):
        runtime.predict(wrong, points=[[1, 1]])
    big = ImageEmbedding(embeddings=embedding.embeddings, original_size=(64, 96), reshaped_input_size=(5000, 5000))
    with pytest.raises(InvalidInputError, match="reshaped_input_size"):
        runtime.predict(big, points=[[1, 1]])


def test_embed_names_its_argument(runtime, tmp_path):
    with pytest.raises(InvalidInputError) as info:
        runtime.embed(str(tmp_path / "missing.png"))
    assert info.value.argument == "image"


def test_fifo_image_path_does_not_block(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_raised(lambda: to_rgb_uint8(str(fifo)))), daemon=True)
    worker.start()
    worker.join(10)
    assert outcome and isinstance(outcome[0], InvalidInputError), outcome


def _raised(call):
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test inspects whatever was raised
        return exc
    return None


def test_many_prompts_peak_at_the_result_plus_a_constant(runtime, embedding):
    n = 320
    points = np.random.default_rng(1).uniform(0, 60, (n, 1, 2))
    runtime.predict(embedding, points=points[:2])  # warm
    tracemalloc.start()
    try:
        result = runtime.predict(embedding, points=points)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    kept = result.masks.nbytes + result.low_res_logits.nbytes + result.iou_scores.nbytes
    # one chunk (PREDICT_CHUNK = 16 prompts) of feeds, decoder outputs and upscaling scratch: ~70 MiB
    assert peak <= kept + 100 * 2**20, (peak / 2**20, kept / 2**20)
    assert result.masks.shape[0] == n


def test_max_prompts_is_a_typed_error(random_tiny_engine, embedding):
    rt = SamRuntime.load(random_tiny_engine, max_prompts=8)
    with pytest.raises(InvalidInputError, match="max_prompts=8"):
        rt.predict(embedding, points=np.ones((9, 1, 2)))
    assert rt.predict(embedding, points=np.ones((8, 1, 2))).masks.shape[0] == 8
    rt.close()
    with pytest.raises(InvalidInputError, match="max_prompts"):
        SamRuntime.load(random_tiny_engine, max_prompts=0)


def test_unknown_provider_is_refused(random_tiny_engine):
    with pytest.raises(InvalidInputError, match="providers"):
        SamRuntime.load(random_tiny_engine, providers=["BogusProvider"])


def test_close_racing_calls_raises_only_typed_errors(random_tiny_engine, embedding):
    errors: list[BaseException] = []
    for _ in range(6):
        rt = SamRuntime.load(random_tiny_engine, decoder_workers=2)
        stop = threading.Event()

        def hammer(rt=rt, stop=stop):
            while not stop.is_set():
                try:
                    rt.predict(embedding, points=np.ones((4, 1, 2)))
                except SamError:
                    pass
                except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                    errors.append(exc)
                    return

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        threading.Event().wait(0.2)
        rt.close()
        with pytest.raises(InferenceError):
            rt.predict(embedding, points=[[1, 1]])
        stop.set()
        for thread in threads:
            thread.join(30)
    assert errors == []


def test_float_labels_stay_refused_by_the_runtime(runtime, embedding):
    with pytest.raises(InvalidInputError, match="integer dtype"):
        runtime.predict(embedding, points=[[5.0, 5.0]], labels=np.array([1.0]))
