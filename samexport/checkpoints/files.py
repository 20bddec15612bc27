"""Reading SAM weight files safely: hashing a checkpoint, one weight file (safetensors, or
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects), a transformers model
directory (``config.json`` plus weights, sharded or not), and writing one.

Every failure is a :class:`samrt.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from samrt.errors import CheckpointError, ConfigError

from ..config import SamConfig

__all__ = ["sha256_of", "load_state_dict_file", "read_hf_directory", "write_hf_directory", "first_line",
           "not_a_file", "CONFIG_NAME", "SAFETENSORS_NAME"]

SAFETENSORS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


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


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Read one weight file safely: ``.safetensors`` via safetensors, anything else via
    ``torch.load(weights_only=True)``. Returns a flat ``{name: tensor}`` dict."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(not_a_file(path), path=str(path))
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"not a valid safetensors file ({exc})", path=str(path)) from exc
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            "refused to load: the file contains objects other than tensors, which could run "
            f"code (torch.load weights_only=True rejected it: {first_line(exc)})",
            path=str(path),
        ) from exc
    except Exception as exc:  # a corrupt file makes torch.load fail in any way (IndexError, struct.error, ...)
        raise CheckpointError(
            f"not a readable PyTorch checkpoint (truncated or corrupt? {type(exc).__name__}: {first_line(exc)})",
            path=str(path),
        ) from exc
    return _as_state_dict(data, path)


def not_a_file(path: Path) -> str:
    return ("not a regular file (a device, FIFO or socket cannot be a checkpoint)" if path.exists()
            else "no such file or directory")


def first_line(exc: BaseException) -> str:
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


def read_hf_directory(directory: Path) -> tuple[SamConfig, dict[str, torch.Tensor]]:
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


def write_hf_directory(config: SamConfig, state: dict[str, torch.Tensor], directory: str | Path) -> None:
    """Write ``config.json`` and ``model.safetensors`` in transformers' layout."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config.to_json_file(directory / CONFIG_NAME)
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(directory / SAFETENSORS_NAME),
              metadata={"format": "pt"})
