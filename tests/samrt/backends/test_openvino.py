"""samrt.backends.openvino on the tiny engine: parity with onnxruntime, dynamic prompt shapes,
threads, the precision read back, and typed errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from samrt import SamRuntime
from samrt.backends import check_runner
from samrt.backends import openvino as ov_backend
from samrt.errors import BackendUnavailableError, InvalidInputError, ManifestError

from samexport.report import run_report, sample_images
from samexport.report.compare import CompareSettings

from ..threads import assert_threads_match_serial

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def runtimes(tiny_engine):
    return SamRuntime.load(tiny_engine, backend="onnxruntime"), SamRuntime.load(tiny_engine, backend="openvino")


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 256, (180, 240, 3), dtype=np.uint8)


def test_fp32_matches_onnxruntime(runtimes, image):
    ort, ov = runtimes
    assert ov.backend == "openvino" and ov.encoder.describe()["precision"] == "fp32"
    check_runner(ov.encoder), check_runner(ov.decoder)
    ours, theirs = ov.embed(image), ort.embed(image)
    assert np.abs(ours.embeddings - theirs.embeddings).max() <= 1e-3
    for points, boxes in (([[[60, 50]]], None), ([[[60, 50], [100, 120]]] * 3, [[10, 10, 200, 170]] * 3),
                          (None, [[5, 5, 90, 80], [30, 40, 230, 170]])):
        labels = None if points is None else np.ones(np.asarray(points).shape[:2], np.int32)
        a = ov.predict(theirs, points=points, labels=labels, boxes=boxes)
        b = ort.predict(theirs, points=points, labels=labels, boxes=boxes)
        assert np.abs(a.iou_scores - b.iou_scores).max() <= 1e-4
        assert np.abs(a.low_res_logits - b.low_res_logits).max() <= 1e-3
        iou = (a.masks & b.masks).sum() / max((a.masks | b.masks).sum(), 1)
        assert iou >= 0.999


def test_eight_threads_equal_serial_calls(runtimes, image):
    _, ov = runtimes
    embedding = ov.embed(image)
    prompts = [[[[20 + 10 * i, 30 + 5 * i]]] for i in range(8)]
    assert_threads_match_serial(lambda p: ov.predict(embedding, points=p).low_res_logits, prompts)


def test_precision_is_explicit_and_read_back(tiny_engine, monkeypatch):
    path = tiny_engine / "decoder.onnx"
    if "BF16" in ov_backend.cpu_capabilities():
        assert ov_backend.OpenVINORunner.from_path(path, precision="bf16").describe()["precision"] == "bf16"
    monkeypatch.setattr(ov_backend, "cpu_capabilities", lambda: ("FP32", "INT8"))
    with pytest.raises(BackendUnavailableError, match="cannot run OpenVINO at bf16"):
        ov_backend.OpenVINORunner.from_path(path, precision="bf16")
    assert ov_backend.OpenVINORunner.from_path(path, threads=1).describe()["threads"] == 1
    with pytest.raises(InvalidInputError, match="precision"):
        ov_backend.CompiledModelLoader(path=path, precision="int4")


def test_a_damaged_graph_is_named(tiny_engine, tmp_path):
    broken = tmp_path / "decoder.onnx"
    shutil.copy(tiny_engine / "decoder.onnx", broken)
    broken.write_bytes(broken.read_bytes()[:1000])
    with pytest.raises(ManifestError, match="decoder.onnx"):
        ov_backend.OpenVINORunner.from_path(broken)


def test_bad_feeds_and_closed_runner(tiny_engine):
    runner = ov_backend.OpenVINORunner.from_path(tiny_engine / "encoder.onnx")
    with pytest.raises(InvalidInputError, match="pixel_values"):
        runner.infer({"pixel_values": np.zeros((1, 3, 8, 8), np.float64)})
    runner.close()
    with pytest.raises(Exception, match="closed"):
        runner.infer({"pixel_values": np.zeros((1, 3, 8, 8), np.float32)})


def test_report_passes_on_openvino_fp32(tiny_model, tiny_engine):
    record, _ = run_report(tiny_engine, tiny_model, images=sample_images(("astronaut",)), backends=["openvino"],
                           settings=CompareSettings(prompts_per_kind=2, worst_cases=0))
    assert list(record["backends"]) == ["openvino"]
    assert record["passed"], [c for c in record["backends"]["openvino"]["checks"] if not c["passed"]]
