"""Once at ViT-B size: export random:vit_b, verify, and serve it against transformers (slow, ~3 min)."""

from __future__ import annotations

import numpy as np
import pytest
from samrt import SamRuntime

from .test_runtime import _hf_reference

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
skimage_data = pytest.importorskip("skimage.data")

PROMPTS = {
    "points": dict(points=[[[250.0, 150.0], [100.0, 400.0]], [[300.0, 300.0], [20.0, 20.0]]], labels=[[1, 0], [1, 1]]),
    "point+box": dict(points=[[[250.0, 150.0]]], labels=[[1]], boxes=[[150.0, 30.0, 350.0, 300.0]]),
}


@pytest.mark.slow
def test_vit_b_export_verifies_and_predicts_like_transformers(tmp_path):
    from samexport.checkpoints.random_weights import random_model
    from samexport.config import preset
    from samexport.export import export_model

    model = random_model(preset("vit_b"), seed=0)
    engine = export_model(model, tmp_path / "vit_b", source="random:vit_b", source_sha256=None)
    runtime = SamRuntime.load(engine, backend="onnxruntime")
    verification = runtime.manifest.verification
    assert verification["embeddings_max_abs"] <= 1e-3
    assert all(r["iou_max_abs"] <= 1e-4 and r["mask_iou_min"] >= 0.999 for r in verification["decoder"])

    model.save_pretrained(tmp_path / "hf")
    hf = transformers.SamModel.from_pretrained(str(tmp_path / "hf")).eval()
    image = skimage_data.astronaut()[:, 40:]  # 512 x 472, a real photograph
    embedding = runtime.embed(image)
    hf_embeddings: dict = {}  # transformers' vision encoder runs once for the image
    for name, prompt in PROMPTS.items():
        result = runtime.predict(embedding, **prompt)
        ref_logits, ref_iou = _hf_reference(hf, image, prompt, True, embeddings_cache=hf_embeddings)
        assert np.abs(result.iou_scores - ref_iou).max() <= 1e-4, name
        ref_masks = ref_logits > 0
        inter = (result.masks & ref_masks).sum(axis=(-2, -1))
        union = np.maximum((result.masks | ref_masks).sum(axis=(-2, -1)), 1)
        assert (inter / union).min() >= 0.999, name
