"""Loading checkpoints: both formats, strictness, and refusal of hostile files."""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from samrt.errors import CheckpointError

from samexport.checkpoints.meta_config import infer_config_from_meta
from samexport.checkpoints.naming import hf_to_meta, meta_to_hf
from samexport.config import preset
from samexport.modeling.sam import SamModel


def _same_weights(a, b) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_save_and_load_hf_directory(tiny_model, hf_dir):
    assert (hf_dir / "model.safetensors").is_file()
    _same_weights(SamModel.from_pretrained(hf_dir), tiny_model)


def test_loads_sharded_safetensors_written_by_transformers(hf_oracle, tiny_model, tmp_path):
    hf_oracle.save_pretrained(tmp_path, max_shard_size="200KB")
    assert list(tmp_path.glob("*.index.json")), "expected transformers to shard this model"
    _same_weights(SamModel.from_pretrained(tmp_path), tiny_model)


def test_loads_pytorch_model_bin(tiny_model, hf_dir, tmp_path):
    (tmp_path / "config.json").write_text((hf_dir / "config.json").read_text())
    torch.save(tiny_model.state_dict(), tmp_path / "pytorch_model.bin")
    _same_weights(SamModel.from_pretrained(tmp_path), tiny_model)


def test_meta_names_round_trip(tiny_model):
    state = tiny_model.state_dict()
    meta = hf_to_meta(state)
    assert all(k.startswith(("image_encoder.", "prompt_encoder.", "mask_decoder.")) for k in meta)
    assert meta_to_hf(meta).keys() == state.keys()


def test_meta_config_inferred_from_shapes(tiny_model, tiny_config, meta_checkpoint):
    inferred = infer_config_from_meta(torch.load(meta_checkpoint, weights_only=True))
    assert inferred.vision_config == tiny_config.vision_config
    assert inferred.prompt_encoder_config == tiny_config.prompt_encoder_config
    _same_weights(SamModel.from_pretrained(meta_checkpoint, config=tiny_config), tiny_model)


@pytest.mark.parametrize("name", ["vit_b", "vit_l", "vit_h"])
def test_meta_model_type_inferred_for_released_shapes(name):
    from samexport.modeling import SamModel

    with torch.device("meta"):
        state = hf_to_meta(SamModel(preset(name)).state_dict())
    config = infer_config_from_meta(state)
    assert config.vision_config == preset(name).vision_config
    assert config.prompt_encoder_config == preset(name).prompt_encoder_config


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("filename", ["evil.pth", "pytorch_model.bin"])
def test_malicious_pickle_is_refused(tmp_path, filename, hf_dir):
    marker = tmp_path / "pwned"
    target = tmp_path / filename
    if filename.endswith(".bin"):
        (tmp_path / "config.json").write_text((hf_dir / "config.json").read_text())
    with open(target, "wb") as handle:
        pickle.dump({"image_encoder.x": _Exploit(str(marker))}, handle)
    with pytest.raises(CheckpointError, match="refused") as info:
        SamModel.from_pretrained(target if filename.endswith(".pth") else tmp_path)
    assert str(target) in str(info.value)
    assert not marker.exists()


def test_malicious_pickle_inside_torch_zip_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    target = tmp_path / "evil.pth"
    torch.save({"image_encoder.x": _Exploit(str(marker))}, target)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="refused"):
        SamModel.from_pretrained(target)
    assert not marker.exists()


def test_truncated_files_give_typed_errors(meta_checkpoint, hf_dir, tmp_path):
    data = meta_checkpoint.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pth"):
        SamModel.from_pretrained(cut)
    cut_dir = tmp_path / "cut_dir"
    cut_dir.mkdir()
    (cut_dir / "config.json").write_text((hf_dir / "config.json").read_text())
    blob = (hf_dir / "model.safetensors").read_bytes()
    (cut_dir / "model.safetensors").write_bytes(blob[: len(blob) // 3])
    with pytest.raises(CheckpointError, match="safetensors"):
        SamModel.from_pretrained(cut_dir)


def test_wrong_size_checkpoint_lists_mismatches(meta_checkpoint, tiny_config):
    other = preset("tiny") if tiny_config != preset("tiny") else __import__("tests.conftest").conftest.TINY_WIDE
    with pytest.raises(CheckpointError) as info:
        SamModel.from_pretrained(meta_checkpoint, config=other)
    err = info.value
    assert err.shape_mismatches or err.missing_keys or err.unexpected_keys
    assert "does not fit" in str(err)


def test_vit_b_weights_into_vit_h_config(tmp_path):
    from samexport.modeling import SamModel

    with torch.device("meta"):
        vit_b = SamModel(preset("vit_b")).state_dict()
    state = {k: torch.zeros(v.shape) for k, v in vit_b.items() if "layers.11." in k or "neck" in k}
    target = tmp_path / "sam_vit_b.pth"
    torch.save(hf_to_meta(state), target)
    with pytest.raises(CheckpointError) as info:
        SamModel.from_pretrained(target, config=preset("vit_h"))
    assert info.value.missing_keys
    assert any(name.startswith("vision_encoder.layers.11.") for name, _, _ in info.value.shape_mismatches)


def test_missing_sources(tmp_path):
    with pytest.raises(CheckpointError, match="no such"):
        SamModel.from_pretrained(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="config.json"):
        SamModel.from_pretrained(tmp_path)
    assert not os.listdir(tmp_path)
