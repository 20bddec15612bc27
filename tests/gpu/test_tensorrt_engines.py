"""TensorRT engines on a real GPU: fp32 and fp16 builds of the tiny model and of ViT-B (plain
and stress weights), checked against the FP32 PyTorch reference with the accuracy report.

Marker ``gpu``; every test skips with the reason (no TensorRT, no cuda-python, no GPU) where
they are missing, which is the case on our development machines and in CI.
"""

from __future__ import annotations

import pytest

from samexport.build import BuildSettings, build_engine, tensorrt_missing
from samexport.checkpoints.sources import load_source
from samexport.export import export_model

MISSING = tensorrt_missing()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(MISSING is not None, reason=f"needs TensorRT and a GPU: {MISSING}")]


@pytest.fixture(scope="module", params=["random:tiny", "random:tiny-stress"])
def fp32_engine(request, tmp_path_factory):
    model, digest = load_source(request.param)
    directory = tmp_path_factory.mktemp("gpu") / request.param.split(":")[1]
    return export_model(model, directory, source=request.param, source_sha256=digest), model


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tiny_engines_keep_the_reference_answers(fp32_engine, precision, tmp_path):
    from samrt import SamRuntime

    directory, model = fp32_engine
    built = build_engine(directory, settings=BuildSettings(target="tensorrt", precision=precision, max_prompts=16,
                                                           check_prompts=4),
                         out_dir=tmp_path / f"trt-{precision}", reference=model)
    runtime = SamRuntime.load(built, backend="tensorrt")
    assert runtime.backend == "tensorrt"
    accuracy = runtime.manifest.accuracy
    assert accuracy.extra["backend"] == "tensorrt"
    assert accuracy.passed, accuracy.failed


@pytest.mark.slow
@pytest.mark.parametrize("source", ["random:vit_b", "random:vit_b-stress"])
def test_vit_b_fp16_engine(source, tmp_path):
    model, digest = load_source(source)
    directory = export_model(model, tmp_path / "vit_b", source=source, source_sha256=digest)
    built = build_engine(directory, settings=BuildSettings(target="tensorrt", precision="fp16", check_prompts=8),
                         out_dir=tmp_path / "vit_b-trt-fp16", reference=model)
    from samrt.manifest import load_manifest

    accuracy = load_manifest(built)["accuracy"]
    assert accuracy["embeddings_cosine_min"] >= 0.999
    assert accuracy["mask_iou"]["p1"] >= 0.98, accuracy
