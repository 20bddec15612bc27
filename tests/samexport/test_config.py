import json

import pytest
from samrt.errors import ConfigError

from samexport.config import PRESETS, SamConfig, SamVisionConfig, preset

transformers = pytest.importorskip("transformers")

HF_PRESETS = {
    # facebook/sam-vit-base / -large / -huge vision towers
    "vit_b": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, global_attn_indexes=[2, 5, 8, 11]),
    "vit_l": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, global_attn_indexes=[5, 11, 17, 23]),
    "vit_h": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, global_attn_indexes=[7, 15, 23, 31]),
}


@pytest.mark.parametrize("name", sorted(HF_PRESETS))
def test_presets_match_transformers(name, tmp_path):
    hf = transformers.SamConfig(vision_config=HF_PRESETS[name])
    hf.save_pretrained(tmp_path)
    ours = SamConfig.from_json_file(tmp_path / "config.json")
    assert ours == preset(name)
    assert ours.vision_config.resolved_mlp_dim == hf.vision_config.mlp_dim


def test_round_trip_through_transformers(tmp_path):
    cfg = PRESETS["tiny"]
    cfg.to_json_file(tmp_path / "config.json")
    hf = transformers.SamConfig.from_pretrained(tmp_path)
    assert hf.vision_config.hidden_size == 32
    assert list(hf.vision_config.global_attn_indexes) == [1]
    assert hf.mask_decoder_config.num_attention_heads == cfg.mask_decoder_config.num_attention_heads
    assert SamConfig.from_dict(cfg.to_dict()) == cfg
    assert SamConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(hidden_size=100, num_attention_heads=12), "vision_config.hidden_size"),
        (dict(global_attn_indexes=(2, 12)), "vision_config.global_attn_indexes"),
        (dict(image_size=1000), "vision_config.image_size"),
        (dict(num_hidden_layers=0), "vision_config.num_hidden_layers"),
        (dict(hidden_act="swish"), "vision_config.hidden_act"),
    ],
)
def test_invalid_vision_values_name_the_field(kwargs, field):
    with pytest.raises(ConfigError) as info:
        SamVisionConfig(**kwargs)
    assert info.value.argument == field
    assert field in str(info.value)


def test_inconsistent_widths_are_refused():
    data = PRESETS["vit_b"].to_dict()
    data["vision_config"]["output_channels"] = 128
    with pytest.raises(ConfigError, match="vision_config.output_channels"):
        SamConfig.from_dict(data)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="preset"):
        preset("vit_x")
