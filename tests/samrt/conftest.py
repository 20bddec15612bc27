"""Fixtures shared by samrt's tests."""

from __future__ import annotations

import numpy as np
import pytest
from samrt import SamRuntime


@pytest.fixture(scope="session")
def meta_pair(meta_checkpoint, tmp_path_factory):
    """(our runtime, segment_anything Sam) from the same Meta checkpoint (tiny, random)."""
    torch = pytest.importorskip("torch")
    from samexport.export import export_model
    from samexport.modeling.sam import SamModel
    from tests.conftest import build_meta_sam

    model = SamModel.from_pretrained(meta_checkpoint)
    engine = export_model(model, tmp_path_factory.mktemp("meta_pair") / "tiny", source="test", source_sha256=None)
    meta = build_meta_sam(model.config)
    meta.load_state_dict(torch.load(meta_checkpoint, weights_only=True), strict=True)
    return SamRuntime.load(engine, backend="onnxruntime"), meta


@pytest.fixture(scope="session")
def photo():
    skimage_data = pytest.importorskip("skimage.data")
    return np.ascontiguousarray(skimage_data.astronaut()[::2, ::3])  # 256 x 171, not square
