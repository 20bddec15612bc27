"""Load and save SAM checkpoints, safely and strictly.

Sources:
  * a directory written by transformers' ``SamModel.save_pretrained``: ``config.json`` plus
    ``model.safetensors`` / ``pytorch_model.bin``, or their sharded forms with an
    ``*.index.json``;
  * a Meta ``segment_anything`` checkpoint file (``sam_vit_b_01ec64.pth`` and friends): the
    config is inferred from tensor shapes.

Safety: safetensors files go through the safetensors library; ``.pth`` / ``.bin`` files only
through ``torch.load(weights_only=True)``, which refuses arbitrary pickled objects. Every failure
is a :class:`samrt.errors.CheckpointError` naming the file; a state dict that does not fit the
model lists its missing keys, unexpected keys and shape mismatches.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from collections.abc import Callable
from pathlib import Path

import torch
from samrt.engine_manifest import ModelSource
from samrt.errors import CheckpointError, ConfigError

from .config import SamConfig, SamMaskDecoderConfig, SamPromptEncoderConfig, SamVisionConfig
from .modeling.sam import SamModel

__all__ = [
    "load_model",
    "save_model",
    "load_state_dict_file",
    "meta_to_hf",
    "hf_to_meta",
    "infer_config_from_meta",
    "sha256_of",
]

SAFETENSORS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_TIED_ALIAS = "prompt_encoder.shared_embedding.positional_embedding"
_META_IGNORED = ("pixel_mean", "pixel_std")


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, or of a directory's weight files in name order."""
    path = Path(path)
    digest = hashlib.sha256()
    try:
        files = [path] if path.is_file() else sorted(
            p for p in path.iterdir() if p.is_file() and p.name != "README.md"
        )
        for file in files:
            with open(file, "rb") as handle:
                while block := handle.read(chunk):
                    digest.update(block)
    except OSError as exc:
        raise CheckpointError(f"cannot be read ({exc.strerror or exc})", path=str(exc.filename or path)) from exc
    return digest.hexdigest()


# -- reading files ------------------------------------------------------------------------------
def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read one weight file safely: ``.safetensors`` via safetensors, anything else via
    ``torch.load(weights_only=True)``. Returns a flat ``{name: tensor}`` dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(_not_a_file(path), path=str(path))
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"not a valid safetensors file ({exc})", path=str(path)) from exc
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            "refused to load: the file contains objects other than tensors, which could run "
            f"code (torch.load weights_only=True rejected it: {_first_line(exc)})",
            path=str(path),
        ) from exc
    except Exception as exc:  # a corrupt file makes torch.load fail in any way (IndexError, struct.error, ...)
        raise CheckpointError(
            f"not a readable PyTorch checkpoint (truncated or corrupt? {type(exc).__name__}: {_first_line(exc)})",
            path=str(path),
        ) from exc
    return _as_state_dict(data, path)


def _not_a_file(path: Path) -> str:
    return ("not a regular file (a device, FIFO or socket cannot be a checkpoint)" if path.exists()
            else "no such file or directory")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _as_state_dict(data: object, path: Path) -> dict[str, torch.Tensor]:
    for wrapper in ("model", "state_dict"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items()
    ):
        raise CheckpointError("expected a dict of name -> tensor (a state dict)", path=str(path))
    return data


def _load_hf_directory(directory: Path) -> tuple[SamConfig, dict[str, torch.Tensor]]:
    config_path = directory / CONFIG_NAME
    if not config_path.is_file():
        raise CheckpointError(f"no {CONFIG_NAME} (not a transformers model directory)", path=str(directory))
    try:
        config = SamConfig.from_json_file(config_path)
    except ConfigError as exc:
        raise CheckpointError(f"invalid {CONFIG_NAME}: {exc}", path=str(directory)) from exc
    for name in _WEIGHT_FILES:
        if (directory / name).is_file():
            return config, load_state_dict_file(directory / name)
        index = directory / f"{name}.index.json"
        if index.is_file():
            return config, _load_sharded(index)
    raise CheckpointError(
        f"no weights found (looked for {', '.join(_WEIGHT_FILES)} and their .index.json)",
        path=str(directory),
    )


def _load_sharded(index_path: Path) -> dict[str, torch.Tensor]:
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"unreadable shard index ({exc})", path=str(index_path)) from exc
    state: dict[str, torch.Tensor] = {}
    root = index_path.parent.resolve()
    for shard in sorted(set(weight_map.values())):
        shard_path = (root / shard).resolve()
        if root not in shard_path.parents:
            raise CheckpointError(f"shard {shard!r} lies outside the model directory", path=str(index_path))
        state.update(load_state_dict_file(shard_path))
    return state


# -- Meta <-> transformers names ----------------------------------------------------------------
# (segment_anything prefix, transformers prefix); {i} and {j} stand for layer numbers. The
# first matching row wins, so specific rows come before general ones.
_NAME_MAP: list[tuple[str, str]] = [
    ("image_encoder.patch_embed.proj.", "vision_encoder.patch_embed.projection."),
    ("image_encoder.pos_embed", "vision_encoder.pos_embed"),
    ("image_encoder.blocks.{i}.norm{j}.", "vision_encoder.layers.{i}.layer_norm{j}."),
    ("image_encoder.blocks.{i}.", "vision_encoder.layers.{i}."),
    ("image_encoder.neck.0.", "vision_encoder.neck.conv1."),
    ("image_encoder.neck.1.", "vision_encoder.neck.layer_norm1."),
    ("image_encoder.neck.2.", "vision_encoder.neck.conv2."),
    ("image_encoder.neck.3.", "vision_encoder.neck.layer_norm2."),
    ("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
     "shared_image_embedding.positional_embedding"),
    ("prompt_encoder.point_embeddings.{i}.", "prompt_encoder.point_embed.{i}."),
    ("prompt_encoder.mask_downscaling.0.", "prompt_encoder.mask_embed.conv1."),
    ("prompt_encoder.mask_downscaling.1.", "prompt_encoder.mask_embed.layer_norm1."),
    ("prompt_encoder.mask_downscaling.3.", "prompt_encoder.mask_embed.conv2."),
    ("prompt_encoder.mask_downscaling.4.", "prompt_encoder.mask_embed.layer_norm2."),
    ("prompt_encoder.mask_downscaling.6.", "prompt_encoder.mask_embed.conv3."),
    ("mask_decoder.transformer.layers.{i}.norm{j}.", "mask_decoder.transformer.layers.{i}.layer_norm{j}."),
    ("mask_decoder.transformer.norm_final_attn.", "mask_decoder.transformer.layer_norm_final_attn."),
    ("mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
]
_META_FFN = re.compile(
    r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))\.layers\.(\d+)\.(.*)$"
)
_HF_FFN = re.compile(
    r"^(mask_decoder\.(?:output_hypernetworks_mlps\.\d+|iou_prediction_head))"
    r"\.(proj_in|proj_out|layers\.(\d+))\.(.*)$"
)


def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{j\}", r"(?P<j>\d+)")
    return re.compile("^" + pattern + ("" if template.endswith(".") else "$"))


_META_TO_HF = [(_template_regex(meta), hf) for meta, hf in _NAME_MAP]
_HF_TO_META = [(_template_regex(hf), meta) for meta, hf in _NAME_MAP]


def _rename(key: str, table: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, template in table:
        match = pattern.match(key)
        if match:
            return template.format(**match.groupdict()) + key[match.end():]
    return key


def _ffn_depths(keys: list[str], pattern: re.Pattern[str], layer_group: int) -> dict[str, int]:
    """Per FFN prefix, 1 + the highest layer index found in ``layer_group``."""
    depths: dict[str, int] = {}
    for key in keys:
        match = pattern.match(key)
        if match and match.group(layer_group) is not None:
            depths[match.group(1)] = max(depths.get(match.group(1), 0), int(match.group(layer_group)) + 1)
    return depths


def meta_to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a ``segment_anything`` state dict to transformers' (and our) parameter names."""
    depths = _ffn_depths(list(state), _META_FFN, 2)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key in _META_IGNORED:
            continue
        match = _META_FFN.match(key)
        if match:
            prefix, index, rest = match.group(1), int(match.group(2)), match.group(3)
            last = depths[prefix] - 1
            part = "proj_in" if index == 0 else "proj_out" if index == last else f"layers.{index - 1}"
            out[f"{prefix}.{part}.{rest}"] = tensor
        else:
            out[_rename(key, _META_TO_HF)] = tensor
    return out


def hf_to_meta(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`meta_to_hf`: our / transformers' names to ``segment_anything``'s."""
    middle = _ffn_depths(list(state), _HF_FFN, 3)
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if key == _TIED_ALIAS:
            continue
        match = _HF_FFN.match(key)
        if match:
            prefix, part, rest = match.group(1), match.group(2), match.group(4)
            if part == "proj_in":
                index = 0
            elif part == "proj_out":
                index = middle.get(prefix, 0) + 1
            else:
                index = int(match.group(3)) + 1
            out[f"{prefix}.layers.{index}.{rest}"] = tensor
        else:
            out[_rename(key, _HF_TO_META)] = tensor
    return out


# -- config inference ---------------------------------------------------------------------------
def infer_config_from_meta(state: dict[str, torch.Tensor]) -> SamConfig:
    """Infer the architecture of a ``segment_anything`` state dict from its tensor shapes.

    Everything is read from shapes except the mask decoder's head count, which no tensor
    reveals (8 in every released SAM model), and its LayerNorm eps, set to segment_anything's
    1e-5 so that a Meta checkpoint reproduces Meta's outputs (transformers uses 1e-6, a
    difference of ~1e-3 in mask logits on the same weights).
    """
    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise CheckpointError(f"not a SAM checkpoint: tensor {key!r} is missing")
        return tuple(state[key].shape)

    hidden, channels, patch, _ = shape("image_encoder.patch_embed.proj.weight")
    grid = shape("image_encoder.pos_embed")[1] if "image_encoder.pos_embed" in state else None
    depth = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k)))
    grid = grid or 64
    use_rel_pos = "image_encoder.blocks.0.attn.rel_pos_h" in state
    global_layers, window, heads = [], 14, max(1, hidden // 64)
    if use_rel_pos:
        for i in range(depth):
            length, head_dim = shape(f"image_encoder.blocks.{i}.attn.rel_pos_h")
            heads = hidden // head_dim
            if length == 2 * grid - 1:
                global_layers.append(i)
            else:
                window = (length + 1) // 2
    vision = SamVisionConfig(
        hidden_size=hidden,
        num_channels=channels,
        patch_size=patch,
        image_size=grid * patch,
        num_hidden_layers=depth,
        num_attention_heads=heads,
        window_size=window,
        global_attn_indexes=tuple(global_layers),
        mlp_dim=shape("image_encoder.blocks.0.mlp.lin1.weight")[0],
        output_channels=shape("image_encoder.neck.0.weight")[0],
        num_pos_feats=shape("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix")[1],
        qkv_bias="image_encoder.blocks.0.attn.qkv.bias" in state,
        use_abs_pos="image_encoder.pos_embed" in state,
        use_rel_pos=use_rel_pos,
    )
    prompt_hidden = shape("prompt_encoder.not_a_point_embed.weight")[1]
    prompt = SamPromptEncoderConfig(
        hidden_size=prompt_hidden,
        image_size=grid * patch,
        patch_size=patch,
        mask_input_channels=shape("prompt_encoder.mask_downscaling.3.weight")[0],
    )
    dec_layers = 1 + max(
        int(m.group(1)) for k in state if (m := re.match(r"mask_decoder\.transformer\.layers\.(\d+)\.", k))
    )
    internal = shape("mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight")[0]
    iou_depth = 1 + max(
        int(m.group(1)) for k in state if (m := re.match(r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\.", k))
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=prompt_hidden,
        mlp_dim=shape("mask_decoder.transformer.layers.0.mlp.lin1.weight")[0],
        num_hidden_layers=dec_layers,
        num_attention_heads=8,
        attention_downsample_rate=prompt_hidden // internal,
        num_multimask_outputs=shape("mask_decoder.mask_tokens.weight")[0] - 1,
        iou_head_depth=iou_depth,
        iou_head_hidden_dim=shape("mask_decoder.iou_prediction_head.layers.0.weight")[0],
        # segment_anything's two-way blocks use nn.LayerNorm's default eps; transformers 1e-6.
        layer_norm_eps=1e-5,
    )
    try:
        return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    except ConfigError as exc:
        raise CheckpointError(f"the tensor shapes describe no valid SAM ({exc})") from exc


# -- strict loading -----------------------------------------------------------------------------
def load_state_dict_strict(model: SamModel, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Copy ``state`` into ``model``; on any mismatch raise one error that lists them all."""
    state = dict(state)
    alias = state.pop(_TIED_ALIAS, None)
    expected = model.state_dict()
    if alias is not None and "shared_image_embedding.positional_embedding" not in state:
        state["shared_image_embedding.positional_embedding"] = alias
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        (k, tuple(expected[k].shape), tuple(state[k].shape))
        for k in sorted(set(expected) & set(state))
        if tuple(expected[k].shape) != tuple(state[k].shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            "checkpoint does not fit the model configuration",
            path=source, missing_keys=missing, unexpected_keys=unexpected,
            shape_mismatches=mismatched,
        )
    model.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)


def load_model(source: str | Path, *, config: SamConfig | None = None) -> SamModel:
    """Build a :class:`SamModel` from an HF directory or a Meta checkpoint file.

    ``config`` overrides the one found in (or inferred from) the checkpoint.
    """
    path = Path(source)
    try:
        if path.is_dir():
            found_config, state = _load_hf_directory(path)
        elif path.is_file():
            state = load_state_dict_file(path)
            if any(k.startswith("image_encoder.") for k in state):
                found_config = None if config is not None else _infer_or_raise(state, path)
                state = meta_to_hf(state)
            else:
                raise CheckpointError(
                    "a single weight file must be a segment_anything checkpoint (keys image_encoder.*); "
                    "for transformers weights pass the directory that holds config.json",
                    path=str(path),
                )
        else:
            raise CheckpointError(_not_a_file(path), path=str(path))
        model = SamModel(config or found_config)
        load_state_dict_strict(model, state, source=str(path))
    except CheckpointError:
        raise
    except Exception as exc:  # untrusted bytes: tensors of odd shapes or dtypes fail anywhere in the build
        raise CheckpointError(f"cannot be loaded as a SAM checkpoint ({type(exc).__name__}: {_first_line(exc)})",
                              path=str(path)) from exc
    return model.eval()


def _infer_or_raise(state: dict[str, torch.Tensor], path: Path) -> SamConfig:
    try:
        return infer_config_from_meta(state)
    except CheckpointError as exc:
        raise CheckpointError(str(exc), path=str(path)) from exc


def save_model(model: SamModel, directory: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` in transformers' layout."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(directory / CONFIG_NAME)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / SAFETENSORS_NAME), metadata={"format": "pt"})


def random_model(
    config: SamConfig, *, seed: int = 0, init: Callable[[SamModel, int], None] | None = None
) -> SamModel:
    """A :class:`SamModel` with seeded random weights of a realistic spread (see
    :func:`init_random_weights`). For tests, smoke runs and benchmarks only."""
    model = SamModel(config)
    (init or init_random_weights)(model, seed)
    return model.eval()


def init_random_weights(model: SamModel, seed: int) -> None:
    """Seeded random weights with a realistic spread, deterministic for a given seed.

    Linear / conv weights N(0, 1/fan_in) (activations keep unit scale at any width, so tiny
    and ViT-B models both give non-degenerate masks), biases N(0, 0.02), LayerNorm scales at 1
    and shifts at 0, learned tokens and embeddings N(0, 0.1), the Fourier matrix N(0, 1)
    (segment_anything's scale), absolute / relative position tables N(0, 0.02).

    Measured (relative change of the mask logits per relative change of the image embedding):
    with tokens at N(0, 1) the tiny decoder amplifies by ~1e4, at N(0, 0.3) the ViT-B decoder
    still by ~2e3, which turns float32 rounding into test noise (torch fp32 vs fp64: 2e-4 in
    iou). At N(0, 0.1) the gain is ~1.6 (ViT-B) to ~4 (tiny) and the logits still spread
    (std ~1, 45% positive).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            if "layer_norm" in name:
                param.fill_(1.0 if name.endswith("weight") else 0.0)
            elif param.dim() >= 2 and name.endswith(".weight") and "embed." not in name and "token" not in name:
                # A stride-2, kernel-2 transposed conv feeds each output from `in` channels.
                transposed = isinstance(_owner(model, name), torch.nn.ConvTranspose2d)
                fan_in = param.shape[0] if transposed else param[0].numel()
                param.copy_(noise / fan_in**0.5)
            elif name.endswith(".bias") or "pos_embed" in name or "rel_pos" in name:
                param.copy_(0.02 * noise)
            elif name == "shared_image_embedding.positional_embedding":
                param.copy_(noise)
            else:
                param.copy_(0.1 * noise)


def _owner(model: torch.nn.Module, name: str) -> torch.nn.Module:
    return model.get_submodule(name.rsplit(".", 1)[0])


def load_source(source: str) -> tuple[SamModel, str | None]:
    """``random:NAME`` (seeded random weights, seed 0; smoke tests and benchmarks only;
    ``random:NAME-stress`` adds FP16-hostile outliers, see :mod:`samexport.stress`), an HF
    directory or a Meta .pth file -> (SamModel, sha256 of the source file or directory, or None)."""
    from .config import preset
    from .stress import init_stress_weights, split_stress_name

    if source.startswith("random:"):
        name, stress = split_stress_name(source.split(":", 1)[1])
        return random_model(preset(name), seed=0, init=init_stress_weights if stress else None), None
    return load_model(source), sha256_of(source)


def reference_for_engine(exported_from: ModelSource, source: str | None = None) -> SamModel:
    """The PyTorch model an engine was exported from (``exported_from``: its manifest's
    ``model``): ``source`` if given, else ``exported_from.source``. A checkpoint whose sha256 differs from the one the manifest recorded is
    refused (CheckpointError), since comparing against other weights proves nothing."""
    chosen = source or exported_from.source
    model, digest = load_source(chosen)
    expected = exported_from.sha256
    if expected and digest and digest != expected:
        raise CheckpointError(
            f"has sha256 {digest[:16]}..., but the engine was exported from "
            f"{exported_from.source!r} with sha256 {expected[:16]}...; pass the same checkpoint",
            path=chosen,
        )
    return model
