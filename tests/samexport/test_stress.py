"""Stress weights (random:<preset>-stress): FP16-hostile outliers that FP32 shrugs off, and the
precision policy that survives them, checked end to end on the tiny preset."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from samexport.checkpoints.sources import load_source
from samexport.checkpoints.stress import OUTLIER_MAGNITUDE, outlier_channels, split_stress_name
from samexport.precision import POLICIES, emulate_fp16
from samexport.report import sample_images

SQRT_FP16_MAX = 65504.0**0.5  # a deviation beyond this squares to inf in FP16


@pytest.fixture(scope="module")
def stress_engine(tmp_path_factory):
    from samexport.export import export_model

    model, digest = load_source("random:tiny-stress")
    directory = export_model(model, tmp_path_factory.mktemp("stress") / "tiny-stress", source="random:tiny-stress",
                             source_sha256=digest)  # export verifies FP32 onnxruntime against PyTorch
    return model, directory


def _block_outputs(model, pixels):
    outputs = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: outputs.append(out[0] if isinstance(out, tuple) else out))
             for layer in model.vision_encoder.layers]
    with torch.no_grad():
        embeddings = model.get_image_embeddings(pixels)
    for hook in hooks:
        hook.remove()
    return outputs, embeddings


def test_names():
    assert split_stress_name("vit_b-stress") == ("vit_b", True)
    assert split_stress_name("tiny") == ("tiny", False)


def test_residual_stream_carries_fp16_hostile_outliers_and_fp32_is_unharmed():
    plain, _ = load_source("random:tiny")
    stress, _ = load_source("random:tiny-stress")
    pixels = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(3))
    plain_blocks, plain_emb = _block_outputs(plain, pixels)
    stress_blocks, stress_emb = _block_outputs(stress, pixels)
    channels = outlier_channels(stress.config.vision_config.hidden_size, 0)
    for block in stress_blocks:
        deviation = (block - block.mean(-1, keepdim=True)).abs()
        assert deviation[..., channels].min() > SQRT_FP16_MAX  # every token's variance overflows FP16
        assert block.abs().max() < 65504  # the activations themselves fit
        assert block.abs().max() > 0.5 * OUTLIER_MAGNITUDE
    assert max(float(b.abs().max()) for b in plain_blocks) < SQRT_FP16_MAX
    # FP32 is well-conditioned: float64 agrees, and the embeddings vary over the image
    _, stress_emb64 = _block_outputs(stress.double(), pixels.double())
    assert float((stress_emb.double() - stress_emb64).abs().max()) < 1e-3
    assert float(stress_emb.std(dim=(2, 3)).mean()) > 0.3 and float(plain_emb.std(dim=(2, 3)).mean()) > 0.3


def _embed(model_proto, pixels, *, optimise=False):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimise:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model_proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"pixel_values": pixels})[0]


def test_naive_fp16_fails_on_stress_weights_and_the_policy_passes(stress_engine):
    from samrt import SamRuntime

    _, directory = stress_engine
    runtime = SamRuntime.load(directory, backend="onnxruntime")
    encoder = onnx.load(str(directory / "encoder.onnx"))
    for name, rgb in sample_images(("astronaut", "coffee")):
        pixels = runtime.processor(rgb)["pixel_values"]
        reference = runtime.embed(rgb).embeddings
        naive = _embed(emulate_fp16(encoder, POLICIES["naive"]), pixels)
        # every block's LayerNorm variance is inf, so its output is its shift: the image is lost
        assert not np.isfinite(naive).all() or _cosine(naive, reference) < 0.5, (name, _cosine(naive, reference))
        kept = _embed(emulate_fp16(encoder, POLICIES["layernorm"]), pixels)
        assert np.isfinite(kept).all()
        assert _cosine(kept, reference) >= 0.999, (name, _cosine(kept, reference))


def _cosine(a, b):
    return float((a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b))
