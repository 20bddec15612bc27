"""Loading a checkpoint into a model, strictly: HF directory or Meta ``.pth`` file ->
(config, state dict) -> a model whose every parameter was in the file, with the right shape.

The model class is passed in (``SamModel.from_pretrained`` passes itself), so this module does
not import the model and the model can import it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from samrt.errors import CheckpointError

from ..config import SamConfig
from .files import first_line, load_state_dict_file, not_a_file, read_hf_directory
from .meta_config import infer_config_from_meta
from .naming import TIED_ALIAS, meta_to_hf

__all__ = ["load_checkpoint", "load_state_dict_strict"]

Model = TypeVar("Model", bound=torch.nn.Module)


def load_state_dict_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Copy ``state`` into ``model``; on any mismatch raise one error that lists them all."""
    state = dict(state)
    alias = state.pop(TIED_ALIAS, None)
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


def load_checkpoint(source: str | Path, *, build: Callable[[SamConfig], Model],
                    config: SamConfig | None = None) -> Model:
    """``build(config)`` with the weights of an HF directory or a Meta checkpoint file loaded
    strictly, in eval mode. ``config`` overrides the one found in (or inferred from) the
    checkpoint. Any failure, building included (untrusted shapes), is a CheckpointError."""
    path = Path(source)
    try:
        if path.is_dir():
            found_config, state = read_hf_directory(path)
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
            raise CheckpointError(not_a_file(path), path=str(path))
        model = build(config or found_config)
        load_state_dict_strict(model, state, source=str(path))
    except CheckpointError:
        raise
    except Exception as exc:  # untrusted bytes: tensors of odd shapes or dtypes fail anywhere in the build
        raise CheckpointError(f"cannot be loaded as a SAM checkpoint ({type(exc).__name__}: {first_line(exc)})",
                              path=str(path)) from exc
    return model.eval()


def _infer_or_raise(state: dict[str, torch.Tensor], path: Path) -> SamConfig:
    try:
        return infer_config_from_meta(state)
    except CheckpointError as exc:
        raise CheckpointError(str(exc), path=str(path)) from exc
