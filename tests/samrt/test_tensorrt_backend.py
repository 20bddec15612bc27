"""samrt's TensorRT runner and backend selection, on a fake TensorRT (``fake_tensorrt``) whose
plans run the ONNX graphs with onnxruntime and whose "device memory" is real bytes: the
runner's profile choice, buffer reuse, chunking, host/device copies, device-array inputs and
locking are exercised here; numerics on a real GPU live in tests/gpu/."""

from __future__ import annotations

import importlib.machinery
import shutil
import sys

import numpy as np
import pytest
from samrt import SamRuntime
from samrt.backends.tensorrt import cuda
from samrt.backends.tensorrt.compat import DeviceInfo, check_tensorrt_compatible
from samrt.backends.tensorrt.profiles import profiles_to_dict
from samrt.backends.tensorrt.record import TensorRTRecord
from samrt.errors import (
    BackendUnavailableError,
    EngineCompatibilityError,
    InferenceError,
    InvalidInputError,
    ManifestError,
)
from samrt.manifest import artifact_record, load_manifest, read_manifest, write_manifest

from samexport.tensorrt.profile_planning import plan_profiles

from . import fake_tensorrt
from .threads import assert_threads_match_serial

MAX_PROMPTS, MAX_POINTS = 8, 4


@pytest.fixture
def trt_engine(random_tiny_engine, tmp_path, monkeypatch):
    """A copy of the tiny engine with fake plans and a tensorrt record, and the fake modules
    installed; returns (directory, fake cudart)."""
    directory = tmp_path / "tiny-trt"
    shutil.copytree(random_tiny_engine, directory)
    manifest = load_manifest(directory)
    profiles = plan_profiles(read_manifest(directory), max_prompts=MAX_PROMPTS, max_points=MAX_POINTS)
    engines = fake_tensorrt.write_fake_plans(directory, profiles)
    trt, cudart = fake_tensorrt.make_modules(directory)
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(cuda, "load_cudart", lambda: cudart)
    manifest["tensorrt"] = {"version": trt.__version__, "gpu": "Fake GPU", "compute_capability": "9.0",
                            "precision": "fp32", "engines": engines,
                            "profiles": {g: profiles_to_dict(p) for g, p in profiles.items()}}
    manifest["artifacts"] = {p.name: artifact_record(p) for p in sorted(directory.iterdir())
                             if p.is_file() and p.name != "manifest.json"}
    write_manifest(directory, manifest)
    return directory, cudart


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(5).integers(0, 256, (300, 200, 3), dtype=np.uint8)


def test_auto_picks_tensorrt_and_matches_onnxruntime(trt_engine, random_tiny_engine, image):
    directory, cudart = trt_engine
    runtime = SamRuntime.load(directory)  # auto
    reference = SamRuntime.load(random_tiny_engine, backend="onnxruntime")
    assert runtime.backend == "tensorrt"
    emb, ref_emb = runtime.embed(image), reference.embed(image)
    np.testing.assert_array_equal(emb.embeddings, ref_emb.embeddings)
    rng = np.random.default_rng(0)
    for n in (1, 3, MAX_PROMPTS + 5):  # interactive profile, batch profile, split into chunks
        boxes = np.sort(rng.uniform(0, 200, (n, 2, 2)), axis=1).reshape(n, 4)
        got = runtime.predict(emb, boxes=boxes)
        want = reference.predict(ref_emb, boxes=boxes)
        np.testing.assert_allclose(got.low_res_logits, want.low_res_logits, atol=1e-4)
        np.testing.assert_allclose(got.iou_scores, want.iou_scores, atol=1e-5)
    # buffers: allocated once per profile used (1 encoder profile, 2 decoder profiles), never again
    allocations = cudart.calls["cudaMalloc"]
    assert allocations == 2 + 2 * 7  # encoder: 1 in + 1 out; decoder: 5 in + 2 out, per profile
    runtime.predict(emb, points=[[10, 20], [30, 40]])
    assert cudart.calls["cudaMalloc"] == allocations
    runtime.close()
    assert cudart.calls["cudaFree"] == allocations
    with pytest.raises(InferenceError):
        runtime.embed(image)


def test_profile_limits_name_the_flag(trt_engine, image):
    runtime = SamRuntime.load(trt_engine[0], backend="tensorrt")
    emb = runtime.embed(image)
    runtime.predict(emb, points=np.ones((2, MAX_POINTS, 2)), boxes=[[1, 1, 50, 50]] * 2)  # P = max + 2 fits
    with pytest.raises(InvalidInputError, match="--max-points"):
        runtime.predict(emb, points=np.ones((1, MAX_POINTS + 1, 2)), boxes=[1, 1, 50, 50])


def test_device_arrays_are_copied_device_to_device(trt_engine, image):
    directory, cudart = trt_engine
    runtime = SamRuntime.load(directory, backend="tensorrt")
    pixels = runtime.processor(image)["pixel_values"]
    expected = runtime.encoder.infer({"pixel_values": pixels})["image_embeddings"]
    before = dict(cudart.calls)
    got = runtime.encoder.infer({"pixel_values": cudart.device_array(pixels)})["image_embeddings"]
    np.testing.assert_array_equal(got, expected)
    assert cudart.calls["d2d"] == before.get("d2d", 0) + 1
    assert cudart.calls["h2d"] == before["h2d"]  # no host round trip for the input
    with pytest.raises(InvalidInputError, match="pixel_values"):
        runtime.encoder.infer({"pixel_values": cudart.device_array(pixels.astype(np.float64))})


def test_threads_share_one_runtime(trt_engine, image):
    runtime = SamRuntime.load(trt_engine[0], backend="tensorrt")
    emb = runtime.embed(image)
    points = [np.array([[[20.0 + 10 * i, 30.0 + 7 * i]]]) for i in range(8)]
    assert_threads_match_serial(lambda p: runtime.predict(emb, points=p).low_res_logits, points)


def test_incompatible_engine_is_refused_before_deserializing(trt_engine, monkeypatch):
    directory, _ = trt_engine
    from samrt.backends.tensorrt.loader import PlanLoader

    def never(*args, **kwargs):
        raise AssertionError("deserialized an incompatible plan")

    monkeypatch.setattr(PlanLoader, "__call__", never)
    manifest = load_manifest(directory)
    manifest["tensorrt"]["version"] = "10.3.0"
    manifest["tensorrt"]["compute_capability"] = "8.9"
    manifest["tensorrt"]["gpu"] = "NVIDIA L4"
    write_manifest(directory, manifest)
    with pytest.raises(EngineCompatibilityError) as caught:
        SamRuntime.load(directory, backend="tensorrt")
    message = str(caught.value)
    for part in ("10.3.0", "10.99.1", "8.9", "9.0", "NVIDIA L4", "Fake GPU", "samexport build"):
        assert part in message


def test_compatibility_rules(tmp_path):
    record = TensorRTRecord.from_dict({"version": "10.3.0.26", "gpu": "NVIDIA A10", "compute_capability": "8.6",
                                       "precision": "fp16", "engines": {}, "profiles": {}})
    check_tensorrt_compatible(record, DeviceInfo(tensorrt_version="10.3.0", gpu="NVIDIA A10",
                                                 compute_capability="8.6"), tmp_path)
    # another GPU model of the same architecture is fine
    check_tensorrt_compatible(record, DeviceInfo(tensorrt_version="10.3.0.1", gpu="NVIDIA A40",
                                                 compute_capability="8.6"), tmp_path)
    with pytest.raises(EngineCompatibilityError, match="TensorRT 10.3.0.26 built them.*10.4.0"):
        check_tensorrt_compatible(record, DeviceInfo(tensorrt_version="10.4.0", gpu="NVIDIA A10",
                                                     compute_capability="8.6"), tmp_path)
    with pytest.raises(ManifestError, match="lacks"):
        TensorRTRecord.from_dict({"version": "10.3.0"})


def test_backend_selection_without_tensorrt(random_tiny_engine, tmp_path):
    with pytest.raises(BackendUnavailableError, match="samexport build"):
        SamRuntime.load(random_tiny_engine, backend="tensorrt")  # no engines in the directory
    assert SamRuntime.load(random_tiny_engine).backend == "onnxruntime"
