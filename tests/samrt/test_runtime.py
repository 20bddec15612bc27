"""Exported graphs served by samrt.SamRuntime against transformers' SamModel + SamProcessor."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from samrt import SamRuntime
from samrt.backends.onnxruntime import decoder_row_workers
from samrt.errors import InvalidInputError, ManifestError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
sam_pil = pytest.importorskip("transformers.models.sam.image_processing_pil_sam")


@pytest.fixture(scope="session")
def engine_dir(tiny_engine):
    return tiny_engine


@pytest.fixture(scope="session")
def runtime(engine_dir):
    return SamRuntime.load(engine_dir, backend="onnxruntime")


def test_manifest_records_verification_at_untraced_shapes(engine_dir):
    manifest = json.loads((engine_dir / "manifest.json").read_text())
    rows = manifest["verification"]["decoder"]
    assert {(r["num_prompts"]) for r in rows} == {1, 3, 17}
    assert manifest["verification"]["embeddings_max_abs"] <= 1e-3
    assert all(r["iou_max_abs"] <= 1e-4 and r["mask_iou_min"] >= 0.999 for r in rows)
    assert {"encoder.onnx", "decoder.onnx"} <= set(manifest["artifacts"])


IMAGE_SIZES = [(480, 640), (640, 480), (333, 999), (256, 256)]
PROMPTS = {
    "point": dict(points=[[[120.0, 100.0]]], labels=[[1]]),
    "points": dict(points=[[[120.0, 100.0], [30.0, 40.0]], [[200.0, 50.0], [10.0, 10.0]]], labels=[[1, 0], [1, 1]]),
    "box": dict(boxes=[[20.0, 30.0, 200.0, 220.0]]),
    "boxes": dict(boxes=[[20.0, 30.0, 200.0, 220.0], [0.0, 0.0, 250.0, 250.0], [50.0, 60.0, 70.0, 90.0]]),
    "point+box": dict(points=[[[120.0, 100.0]]], labels=[[1]], boxes=[[20.0, 30.0, 200.0, 220.0]]),
}


def _hf_reference(hf_model, image, prompt, multimask, mask_input=None, embeddings_cache=None):
    """transformers' logits at the original size and iou_scores for one image and prompt.

    embeddings_cache: a dict kept across calls on the same image, so that transformers' own
    vision encoder runs once for it (its image_embeddings are passed to later calls)."""
    processor = transformers.SamProcessor(image_processor=sam_pil.SamImageProcessorPil())
    kwargs = {}
    if "points" in prompt:
        kwargs["input_points"] = [prompt["points"]]
        kwargs["input_labels"] = [prompt["labels"]]
    if "boxes" in prompt:
        kwargs["input_boxes"] = [prompt["boxes"]]
    inputs = processor(images=image, return_tensors="pt", **kwargs)
    model_kwargs = {k: inputs[k] for k in ("input_points", "input_labels", "input_boxes") if k in inputs}
    if mask_input is not None:
        model_kwargs["input_masks"] = torch.from_numpy(mask_input[:1, 0])[None]
    with torch.no_grad():
        if embeddings_cache is None:
            model_kwargs["pixel_values"] = inputs["pixel_values"]
        else:
            if "image_embeddings" not in embeddings_cache:
                embeddings_cache["image_embeddings"] = hf_model.get_image_embeddings(inputs["pixel_values"])
            model_kwargs["image_embeddings"] = embeddings_cache["image_embeddings"]
        out = hf_model(multimask_output=multimask, **model_kwargs)
    logits = processor.image_processor.post_process_masks(
        out.pred_masks, inputs["original_sizes"], inputs["reshaped_input_sizes"], binarize=False
    )[0].numpy()
    return logits, out.iou_scores[0].numpy()


@pytest.mark.parametrize("size", IMAGE_SIZES)
@pytest.mark.parametrize("kind", sorted(PROMPTS))
@pytest.mark.parametrize("multimask", [True, False])
def test_predict_matches_transformers(runtime, hf_oracle, size, kind, multimask):
    image = np.random.default_rng(sum(size)).integers(0, 256, (*size, 3), dtype=np.uint8)
    prompt = PROMPTS[kind]
    embedding = runtime.embed(image)
    result = runtime.predict(embedding, multimask_output=multimask, **prompt)
    ref_logits, ref_iou = _hf_reference(hf_oracle, image, prompt, multimask)
    assert result.masks.shape == ref_logits.shape
    assert result.masks.dtype == np.bool_
    assert np.abs(result.iou_scores - ref_iou).max() <= 1e-4
    decided = np.abs(ref_logits) > 1e-3  # far enough from the threshold for float32 export noise
    assert (result.masks[decided] == (ref_logits[decided] > 0)).all()
    assert 0.0 < result.masks.mean() < 1.0


def test_predict_with_mask_input_matches_transformers(runtime, hf_oracle):
    image = np.random.default_rng(5).integers(0, 256, (300, 500, 3), dtype=np.uint8)
    embedding = runtime.embed(image)
    first = runtime.predict(embedding, points=[[[100.0, 120.0]]], labels=[[1]])
    previous = first.low_res_logits[:, :1]
    second = runtime.predict(embedding, points=[[[100.0, 120.0]]], labels=[[1]], mask_input=previous)
    ref_logits, ref_iou = _hf_reference(
        hf_oracle, image, PROMPTS["point"] | {"points": [[[100.0, 120.0]]]}, True, mask_input=previous
    )
    assert np.abs(second.iou_scores - ref_iou).max() <= 1e-4
    decided = np.abs(ref_logits) > 1e-3
    assert (second.masks[decided] == (ref_logits[decided] > 0)).all()
    assert not np.array_equal(second.low_res_logits, first.low_res_logits)


def test_many_prompts_in_one_call_equal_one_by_one(runtime):
    image = np.random.default_rng(9).integers(0, 256, (400, 300, 3), dtype=np.uint8)
    embedding = runtime.embed(image)
    boxes = np.random.default_rng(1).uniform(0, 150, (20, 2))
    boxes = np.concatenate([boxes, boxes + 100], axis=1)
    together = runtime.predict(embedding, boxes=boxes)
    for i in (0, 7, 19):
        alone = runtime.predict(embedding, boxes=boxes[i])
        np.testing.assert_allclose(together.iou_scores[i], alone.iou_scores[0], atol=1e-5)
        np.testing.assert_allclose(together.low_res_logits[i], alone.low_res_logits[0], atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(), "points"),
        (dict(points=[[np.nan, 1.0]]), "points"),
        (dict(points=[[1.0, 1.0]], labels=[[5]]), "labels"),
        (dict(points=[[1.0, 1.0]], labels=[[1.5]]), "labels"),
        (dict(boxes=[10.0, 10.0, 5.0, 20.0]), "boxes"),
        (dict(boxes=[[1.0, 2.0, 3.0]]), "boxes"),
        (dict(points=[[[1.0, 1.0]]] * 2, boxes=[[0.0, 0.0, 5.0, 5.0]] * 3), "boxes"),
        (dict(points=[[1.0, 1.0]], mask_input=np.zeros((1, 1, 64, 64))), "mask_input"),
    ],
)
def test_bad_prompts_raise_typed_errors(runtime, kwargs, argument):
    embedding = runtime.embed(np.zeros((50, 60, 3), np.uint8))
    with pytest.raises(InvalidInputError) as info:
        runtime.predict(embedding, **kwargs)
    assert info.value.argument == argument


@pytest.mark.parametrize("damage", ["flip", "delete", "truncate", "schema", "escape"])
def test_damaged_engine_directories_are_refused(engine_dir, tmp_path, damage):
    copy = tmp_path / "engine"
    shutil.copytree(engine_dir, copy)
    manifest_path = copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if damage == "flip":
        data = bytearray((copy / "decoder.onnx").read_bytes())
        data[len(data) // 2] ^= 0xFF
        (copy / "decoder.onnx").write_bytes(bytes(data))
        expected = "decoder.onnx"
    elif damage == "delete":
        (copy / "encoder.onnx").unlink()
        expected = "encoder.onnx"
    elif damage == "truncate":
        data = (copy / "decoder.onnx").read_bytes()
        (copy / "decoder.onnx").write_bytes(data[:100])
        expected = "decoder.onnx"
    elif damage == "schema":
        manifest["schema_version"] = 99
        manifest_path.write_text(json.dumps(manifest))
        expected = "schema_version"
    else:
        manifest["artifacts"]["../../etc/passwd"] = {"sha256": "0", "bytes": 0}
        manifest_path.write_text(json.dumps(manifest))
        expected = "outside"
    with pytest.raises(ManifestError, match=expected):
        SamRuntime.load(copy)


@pytest.mark.parametrize("value", [0, -1, 1.5, "1MiB"])
def test_heap_threshold_must_be_a_positive_byte_count(engine_dir, value):
    with pytest.raises(InvalidInputError, match="limit_heap_fragmentation"):
        SamRuntime.load(engine_dir, backend="onnxruntime", limit_heap_fragmentation=value)


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "2"])
def test_decoder_workers_must_be_a_positive_int(engine_dir, value):
    with pytest.raises(InvalidInputError, match="decoder_workers"):
        SamRuntime.load(engine_dir, backend="onnxruntime", decoder_workers=value)


def test_prompts_shared_over_threads_equal_prompts_in_turn(runtime, engine_dir):
    assert runtime.decoder.row_workers == decoder_row_workers(["CPUExecutionProvider"])
    in_turn = SamRuntime.load(engine_dir, backend="onnxruntime", decoder_workers=1)
    shared = SamRuntime.load(engine_dir, backend="onnxruntime", decoder_workers=3).warmup()
    assert (in_turn.decoder.row_workers, shared.decoder.row_workers) == (1, 3)
    embedding = shared.embed(np.random.default_rng(4).integers(0, 256, (300, 500, 3), dtype=np.uint8))
    points = np.random.default_rng(5).uniform(0, 300, (11, 2, 2))
    expected = in_turn.predict(embedding, points=points, labels=np.tile([1, 0], (11, 1)))
    got = shared.predict(embedding, points=points, labels=np.tile([1, 0], (11, 1)))
    np.testing.assert_allclose(got.low_res_logits, expected.low_res_logits, atol=1e-5)
    np.testing.assert_allclose(got.iou_scores, expected.iou_scores, atol=1e-6)
    logits = in_turn.predict(embedding, points=points, labels=np.tile([1, 0], (11, 1)), return_logits=True).masks
    decided = np.abs(logits) > 1e-4
    assert decided.mean() > 0.99
    assert np.array_equal(got.masks[decided], expected.masks[decided])


def test_cpu_decoder_runs_prompt_by_prompt_with_its_arena(runtime):
    assert runtime.decoder.max_rows == 1
    assert runtime.decoder.row_inputs
