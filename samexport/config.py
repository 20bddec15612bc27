"""SAM configuration: the names and defaults of transformers' ``SamConfig`` family.

Frozen, keyword-only dataclasses. ``SamConfig.from_dict`` / ``to_dict`` read and write the
layout of transformers' ``config.json`` (``vision_config``, ``prompt_encoder_config``,
``mask_decoder_config``); keys transformers adds that do not change the architecture
(``architectures``, ``torch_dtype``, ...) are accepted and ignored.

Presets ``vit_b``, ``vit_l`` and ``vit_h`` match facebook/sam-vit-base, -large and -huge.
Every invalid value raises :class:`samrt.errors.ConfigError` naming the dotted field.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from samrt.errors import ConfigError

__all__ = [
    "SamVisionConfig",
    "SamPromptEncoderConfig",
    "SamMaskDecoderConfig",
    "SamConfig",
    "PRESETS",
    "preset",
]

_ACTIVATIONS = ("gelu", "relu")


def _require(condition: bool, name: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(name, value, expected)


def _positive_int(prefix: str, obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        _require(
            isinstance(value, int) and not isinstance(value, bool) and value > 0,
            f"{prefix}.{name}",
            value,
            "a positive integer",
        )


@dataclass(frozen=True, kw_only=True)
class SamVisionConfig:
    """The ViT image encoder. Defaults are ViT-B's (transformers' class defaults).

    ``mlp_dim`` None is resolved to ``int(hidden_size * mlp_ratio)`` on construction. ``global_attn_indexes`` are the
    layers that attend over the whole image; the others attend inside ``window_size`` windows.
    ``intermediate_size``, ``projection_dim``, ``dropout``, ``initializer_factor`` are kept
    for config.json compatibility and do not change the architecture.
    """

    hidden_size: int = 768
    intermediate_size: int = 6144
    projection_dim: int = 512
    output_channels: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    num_channels: int = 3
    image_size: int = 1024
    patch_size: int = 16
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    dropout: float = 0.0
    attention_dropout: float = 0.0
    initializer_range: float = 1e-10
    initializer_factor: float = 1.0
    qkv_bias: bool = True
    mlp_ratio: float = 4.0
    use_abs_pos: bool = True
    use_rel_pos: bool = True
    window_size: int = 14
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    num_pos_feats: int = 128
    mlp_dim: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "global_attn_indexes", tuple(self.global_attn_indexes))
        p = "vision_config"
        _positive_int(
            p, self, "hidden_size", "output_channels", "num_hidden_layers",
            "num_attention_heads", "num_channels", "image_size", "patch_size", "num_pos_feats",
        )
        _require(
            self.hidden_size % self.num_attention_heads == 0,
            f"{p}.hidden_size", self.hidden_size,
            f"a multiple of num_attention_heads={self.num_attention_heads}",
        )
        _require(
            self.image_size % self.patch_size == 0, f"{p}.image_size", self.image_size,
            f"a multiple of patch_size={self.patch_size}",
        )
        _require(
            isinstance(self.window_size, int) and self.window_size >= 0,
            f"{p}.window_size", self.window_size, "a non-negative integer (0 = global everywhere)",
        )
        for index in self.global_attn_indexes:
            _require(
                isinstance(index, int) and 0 <= index < self.num_hidden_layers,
                f"{p}.global_attn_indexes", list(self.global_attn_indexes),
                f"layer indexes in [0, {self.num_hidden_layers})",
            )
        _require(self.hidden_act in _ACTIVATIONS, f"{p}.hidden_act", self.hidden_act,
                 f"one of {_ACTIVATIONS}")
        _require(self.mlp_ratio > 0, f"{p}.mlp_ratio", self.mlp_ratio, "a positive number")
        _require(self.layer_norm_eps > 0, f"{p}.layer_norm_eps", self.layer_norm_eps, "> 0")
        if self.mlp_dim is None:
            object.__setattr__(self, "mlp_dim", int(self.hidden_size * self.mlp_ratio))
        _positive_int(p, self, "mlp_dim")

    @property
    def embedding_size(self) -> int:
        """Side of the square image-embedding grid (64 for a 1024 image, patch 16)."""
        return self.image_size // self.patch_size

    @property
    def resolved_mlp_dim(self) -> int:
        return int(self.mlp_dim)


@dataclass(frozen=True, kw_only=True)
class SamPromptEncoderConfig:
    """The prompt encoder (points, boxes, dense mask input)."""

    hidden_size: int = 256
    image_size: int = 1024
    patch_size: int = 16
    mask_input_channels: int = 16
    num_point_embeddings: int = 4
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        p = "prompt_encoder_config"
        _positive_int(p, self, "hidden_size", "image_size", "patch_size", "mask_input_channels")
        _require(self.num_point_embeddings == 4, f"{p}.num_point_embeddings",
                 self.num_point_embeddings, "4 (SAM's pos/neg/box-corner embeddings)")
        _require(self.hidden_size % 2 == 0, f"{p}.hidden_size", self.hidden_size, "an even number")
        _require(self.hidden_act in _ACTIVATIONS, f"{p}.hidden_act", self.hidden_act,
                 f"one of {_ACTIVATIONS}")

    @property
    def image_embedding_size(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True, kw_only=True)
class SamMaskDecoderConfig:
    """The two-way transformer mask decoder and its IoU head."""

    hidden_size: int = 256
    hidden_act: str = "relu"
    mlp_dim: int = 2048
    num_hidden_layers: int = 2
    num_attention_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        p = "mask_decoder_config"
        _positive_int(
            p, self, "hidden_size", "mlp_dim", "num_hidden_layers", "num_attention_heads",
            "attention_downsample_rate", "num_multimask_outputs", "iou_head_depth",
            "iou_head_hidden_dim",
        )
        internal = self.hidden_size // self.attention_downsample_rate
        _require(
            self.hidden_size % self.attention_downsample_rate == 0
            and internal % self.num_attention_heads == 0,
            f"{p}.hidden_size", self.hidden_size,
            "divisible by attention_downsample_rate, and the quotient by num_attention_heads",
        )
        _require(self.hidden_size % 8 == 0, f"{p}.hidden_size", self.hidden_size,
                 "a multiple of 8 (the upscaling convolutions use hidden_size/4 and /8)")
        _require(self.hidden_act in _ACTIVATIONS, f"{p}.hidden_act", self.hidden_act,
                 f"one of {_ACTIVATIONS}")


_SUB_CONFIGS = {
    "vision_config": SamVisionConfig,
    "prompt_encoder_config": SamPromptEncoderConfig,
    "mask_decoder_config": SamMaskDecoderConfig,
}


@dataclass(frozen=True, kw_only=True)
class SamConfig:
    """The whole model. Defaults give ViT-B (transformers' ``SamConfig()`` defaults)."""

    vision_config: SamVisionConfig = field(default_factory=SamVisionConfig)
    prompt_encoder_config: SamPromptEncoderConfig = field(default_factory=SamPromptEncoderConfig)
    mask_decoder_config: SamMaskDecoderConfig = field(default_factory=SamMaskDecoderConfig)
    initializer_range: float = 0.02

    def __post_init__(self) -> None:
        for name, cls in _SUB_CONFIGS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, _sub_from_dict(cls, value, name))
            elif not isinstance(value, cls):
                raise ConfigError(name, value, f"a {cls.__name__} or a dict")
        v, pe, md = self.vision_config, self.prompt_encoder_config, self.mask_decoder_config
        _require(v.output_channels == pe.hidden_size == md.hidden_size,
                 "vision_config.output_channels", v.output_channels,
                 f"equal to prompt_encoder_config.hidden_size={pe.hidden_size} and "
                 f"mask_decoder_config.hidden_size={md.hidden_size}")
        _require(v.num_pos_feats * 2 == pe.hidden_size, "vision_config.num_pos_feats",
                 v.num_pos_feats, f"prompt_encoder_config.hidden_size / 2 = {pe.hidden_size // 2}")
        _require(pe.image_size == v.image_size, "prompt_encoder_config.image_size",
                 pe.image_size, f"vision_config.image_size={v.image_size}")
        _require(pe.patch_size == v.patch_size, "prompt_encoder_config.patch_size",
                 pe.patch_size, f"vision_config.patch_size={v.patch_size}")

    def to_dict(self) -> dict[str, Any]:
        """transformers' config.json layout (``model_type`` "sam")."""
        out: dict[str, Any] = {
            name: _sub_to_dict(getattr(self, name)) for name in _SUB_CONFIGS
        }
        out["initializer_range"] = self.initializer_range
        out["model_type"] = "sam"
        out["architectures"] = ["SamModel"]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamConfig:
        if not isinstance(data, dict):
            raise ConfigError("config", data, "a dict")
        model_type = data.get("model_type", "sam")
        _require(model_type == "sam", "model_type", model_type, '"sam"')
        kwargs: dict[str, Any] = {}
        for name, sub_cls in _SUB_CONFIGS.items():
            sub = data.get(name) or {}
            kwargs[name] = _sub_from_dict(sub_cls, sub, name)
        if "initializer_range" in data:
            kwargs["initializer_range"] = float(data["initializer_range"])
        return cls(**kwargs)

    @classmethod
    def from_json_file(cls, path: str | Path) -> SamConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError("config_path", str(path), f"a readable JSON file ({exc})") from exc
        return cls.from_dict(data)

    def to_json_file(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    def replace(self, **changes: Any) -> SamConfig:
        return dataclasses.replace(self, **changes)


def _sub_to_dict(sub: Any) -> dict[str, Any]:
    out = dataclasses.asdict(sub)
    for key, value in out.items():
        if isinstance(value, tuple):
            out[key] = list(value)
    return out


def _sub_from_dict(cls: type, data: dict[str, Any], name: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(name, data, "a dict")
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def _vit(hidden: int, layers: int, heads: int, global_layers: tuple[int, ...]) -> SamConfig:
    return SamConfig(
        vision_config=SamVisionConfig(
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            global_attn_indexes=global_layers,
        )
    )


PRESETS: dict[str, SamConfig] = {
    "vit_b": _vit(768, 12, 12, (2, 5, 8, 11)),
    "vit_l": _vit(1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": _vit(1280, 32, 16, (7, 15, 23, 31)),
    # For tests and smoke runs only: the 1024 input and 64x64 embedding grid of the real models,
    # with a narrow, shallow network.
    "tiny": SamConfig(
        vision_config=SamVisionConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, window_size=7,
            global_attn_indexes=(1,), output_channels=32, num_pos_feats=16, mlp_dim=64,
        ),
        prompt_encoder_config=SamPromptEncoderConfig(hidden_size=32, mask_input_channels=8),
        mask_decoder_config=SamMaskDecoderConfig(
            hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32,
        ),
    ),
}


def preset(name: str) -> SamConfig:
    """Return the preset ``vit_b``, ``vit_l``, ``vit_h`` or ``tiny``."""
    if name not in PRESETS:
        raise ConfigError("preset", name, f"one of {sorted(PRESETS)}")
    return PRESETS[name]
