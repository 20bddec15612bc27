"""The graph contract and engine-directory schema: the single source of truth.

samexport imports these names when it exports; samrt checks against them when it loads.
"""

from __future__ import annotations

from dataclasses import dataclass

# Preprocessing constants (SamProcessor's defaults).
IMAGE_SIZE = 1024  # longest edge after resize, and the padded square side
MASK_SIZE = 256  # low-res mask side (IMAGE_SIZE / 4)
EMBEDDING_SIZE = 64  # image-embedding grid side (IMAGE_SIZE / patch 16)
IMAGE_MEAN = (0.485, 0.456, 0.406)  # ImageNet, on [0, 1] pixels
IMAGE_STD = (0.229, 0.224, 0.225)
RESCALE_FACTOR = 1.0 / 255.0

# Point labels understood by the decoder graph.
LABEL_BACKGROUND = 0
LABEL_FOREGROUND = 1
LABEL_BOX_TOP_LEFT = 2
LABEL_BOX_BOTTOM_RIGHT = 3
LABEL_NOT_A_POINT = -1  # SAM's pad token (learned embedding)
LABEL_IGNORED_PAD = -10  # transformers' ragged-batch pad (zero token)
VALID_LABELS = (LABEL_FOREGROUND, LABEL_BACKGROUND, LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT, LABEL_NOT_A_POINT,
                LABEL_IGNORED_PAD)  # what the decoder graph and transformers' processor take
# What a caller labels its points with in SamRuntime.predict (box corners come from boxes).
POINT_LABELS = (LABEL_FOREGROUND, LABEL_BACKGROUND, LABEL_NOT_A_POINT, LABEL_IGNORED_PAD)


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output. ``shape`` entries are ints or symbolic names (dynamic axes)."""

    name: str
    dtype: str  # numpy dtype name
    shape: tuple[int | str, ...]

    @property
    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}


def encoder_inputs(channels: int = 3, size: int = IMAGE_SIZE) -> tuple[TensorSpec, ...]:
    return (TensorSpec("pixel_values", "float32", ("batch", channels, size, size)),)


def encoder_outputs(channels: int = 256, grid: int = EMBEDDING_SIZE) -> tuple[TensorSpec, ...]:
    return (TensorSpec("image_embeddings", "float32", ("batch", channels, grid, grid)),)


def decoder_inputs(channels: int = 256, grid: int = EMBEDDING_SIZE) -> tuple[TensorSpec, ...]:
    mask = 4 * grid
    return (
        TensorSpec("image_embeddings", "float32", (1, channels, grid, grid)),
        TensorSpec("input_points", "float32", ("num_prompts", "num_points", 2)),
        TensorSpec("input_labels", "int32", ("num_prompts", "num_points")),
        TensorSpec("mask_input", "float32", ("num_prompts", 1, mask, mask)),
        TensorSpec("has_mask_input", "float32", ("num_prompts",)),
    )


def decoder_outputs(num_mask_tokens: int = 4, grid: int = EMBEDDING_SIZE) -> tuple[TensorSpec, ...]:
    mask = 4 * grid
    return (
        TensorSpec("iou_scores", "float32", ("num_prompts", num_mask_tokens)),
        TensorSpec("low_res_masks", "float32", ("num_prompts", num_mask_tokens, mask, mask)),
    )


def graph_contract(graph: str) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """(inputs, outputs) of ``graph`` ("encoder" or "decoder") at the default sizes: the names
    and order a loaded graph and its manifest entry must have."""
    if graph == "encoder":
        return encoder_inputs(), encoder_outputs()
    if graph == "decoder":
        return decoder_inputs(), decoder_outputs()
    raise ValueError(f"unknown graph {graph!r}: expected 'encoder' or 'decoder'")


# Engine directory.
MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA_VERSION = 1
ENCODER_ONNX = "encoder.onnx"
DECODER_ONNX = "decoder.onnx"
