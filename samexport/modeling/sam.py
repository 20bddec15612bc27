"""``SamModel``: the reference PyTorch SAM with transformers' forward semantics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from samrt import spec
from samrt.errors import InvalidInputError
from torch import nn

from ..checkpoints.files import write_hf_directory
from ..checkpoints.loading import load_checkpoint
from ..config import SamConfig
from .mask_decoder import MaskDecoder
from .positional_encoding import RandomFourierEmbedding
from .prompt_encoder import PromptEncoder
from .vision_encoder import VisionEncoder

BOX_CORNER_LABELS = (2, 3)


@dataclass
class SamOutput:
    """``iou_scores`` float32 [B, point_batch, K]; ``pred_masks`` float32 [B, point_batch, K, 256, 256].

    K is 3 with ``multimask_output=True`` and 1 otherwise. ``pred_masks`` are low-resolution
    logits in the padded 1024 frame (post-process them with ``SamProcessor.post_process_masks``).
    """

    iou_scores: torch.Tensor
    pred_masks: torch.Tensor

    def __getitem__(self, index: int) -> torch.Tensor:
        return (self.iou_scores, self.pred_masks)[index]


class SamModel(nn.Module):
    """Segment Anything: image encoder, prompt encoder, mask decoder.

    Parameter names follow transformers' ``SamModel``, so its checkpoints load as they are;
    Meta's ``segment_anything`` checkpoints are renamed on load (``samexport.checkpoints.naming``).
    """

    def __init__(self, config: SamConfig) -> None:
        super().__init__()
        self.config = config
        pe_cfg = config.prompt_encoder_config
        self.shared_image_embedding = RandomFourierEmbedding(
            num_pos_feats=config.vision_config.num_pos_feats,
            scale=config.vision_config.hidden_size // 2,
        )
        self.vision_encoder = VisionEncoder(config.vision_config)
        self.prompt_encoder = PromptEncoder(pe_cfg, shared_embedding=self.shared_image_embedding)
        self.mask_decoder = MaskDecoder(config.mask_decoder_config)

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, source: str | Path, *, config: SamConfig | None = None) -> SamModel:
        """Load an HF directory (``save_pretrained`` layout) or a Meta ``.pth`` file, safely and
        strictly (:func:`samexport.checkpoints.loading.load_checkpoint`). ``config`` overrides the
        one found in (or inferred from) the checkpoint."""
        return load_checkpoint(source, build=cls, config=config)

    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` + ``model.safetensors`` (transformers' layout)."""
        write_hf_directory(self.config, self.state_dict(), directory)

    # -- pieces ------------------------------------------------------------------------------
    @torch.no_grad()
    def get_image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values float32 [B, 3, S, S] -> image embeddings float32 [B, C, g, g]."""
        return self.vision_encoder(pixel_values)

    def get_image_wide_positional_embeddings(self) -> torch.Tensor:
        """Positional encoding of every embedding cell: [1, C, g, g]."""
        return self.shared_image_embedding.dense_grid(self.config.prompt_encoder_config.image_embedding_size)

    def decode(
        self, image_embeddings: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the mask decoder for M prompts.

        image_embeddings [M|1, C, g, g], sparse [M, P, C], dense [M|1, C, g, g].
        Returns (logits for all K+1 mask tokens [M, K+1, 4g, 4g], iou [M, K+1]).
        """
        image = image_embeddings + dense
        return self.mask_decoder(image, self.get_image_wide_positional_embeddings(), sparse)

    # -- transformers-compatible forward -------------------------------------------------------
    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_points: torch.Tensor | None = None,
        input_labels: torch.Tensor | None = None,
        input_boxes: torch.Tensor | None = None,
        input_masks: torch.Tensor | None = None,
        image_embeddings: torch.Tensor | None = None,
        multimask_output: bool = True,
    ) -> SamOutput:
        """transformers' ``SamModel.forward`` semantics.

        input_points float32 [B, point_batch, n, 2] in the resized 1024 frame; input_labels
        [B, point_batch, n] in {1, 0, -1, -10} (default all 1); input_boxes float32
        [B, n_boxes, 4] (x0, y0, x1, y1) with n_boxes == point_batch when points are given too;
        input_masks float32 [B, 1, 256, 256] low-res logits.
        """
        if (pixel_values is None) == (image_embeddings is None):
            raise InvalidInputError(
                "pixel_values", "both" if pixel_values is not None else None,
                "exactly one of pixel_values and image_embeddings",
            )
        if image_embeddings is None:
            image_embeddings = self.vision_encoder(pixel_values)
        batch = image_embeddings.shape[0]
        sparse = self._sparse_tokens(batch, input_points, input_labels, input_boxes)
        point_batch = sparse.shape[1]

        if input_masks is not None:
            if input_masks.dim() == 3:
                input_masks = input_masks.unsqueeze(1)
            dense = self.prompt_encoder.embed_masks(input_masks)
        else:
            dense = self.prompt_encoder.no_mask_dense(1)
        image = (image_embeddings + dense).repeat_interleave(point_batch, dim=0)
        flat_sparse = sparse.reshape(batch * point_batch, sparse.shape[2], sparse.shape[3])
        masks, iou = self.mask_decoder(image, self.get_image_wide_positional_embeddings(), flat_sparse)

        chosen = slice(1, None) if multimask_output else slice(0, 1)
        masks = masks[:, chosen].reshape(batch, point_batch, -1, masks.shape[-2], masks.shape[-1])
        iou = iou[:, chosen].reshape(batch, point_batch, -1)
        return SamOutput(iou_scores=iou, pred_masks=masks)

    def _sparse_tokens(
        self,
        batch: int,
        points: torch.Tensor | None,
        labels: torch.Tensor | None,
        boxes: torch.Tensor | None,
    ) -> torch.Tensor:
        """Sparse prompt tokens [B, point_batch, P, C] in transformers' order: points, then
        box corners; SAM's "not a point" pad is appended when there is no box."""
        hidden = self.config.prompt_encoder_config.hidden_size
        dtype = self.prompt_encoder.not_a_point_embed.weight.dtype
        parts_coords: list[torch.Tensor] = []
        parts_labels: list[torch.Tensor] = []
        if points is not None:
            if points.dim() != 4 or points.shape[-1] != 2 or points.shape[0] != batch:
                raise InvalidInputError(
                    "input_points", tuple(points.shape), f"shape [{batch}, point_batch, n, 2]"
                )
            if labels is None:
                labels = torch.ones(points.shape[:-1], dtype=torch.int64, device=points.device)
            if tuple(labels.shape) != tuple(points.shape[:-1]):
                raise InvalidInputError(
                    "input_labels", tuple(labels.shape), f"shape {tuple(points.shape[:-1])}"
                )
            parts_coords.append(points.to(dtype))
            parts_labels.append(labels.to(torch.int64))
        if boxes is not None:
            if boxes.dim() != 3 or boxes.shape[-1] != 4 or boxes.shape[0] != batch:
                raise InvalidInputError("input_boxes", tuple(boxes.shape), f"shape [{batch}, n_boxes, 4]")
            if points is not None and boxes.shape[1] != points.shape[1]:
                raise InvalidInputError(
                    "input_boxes", tuple(boxes.shape),
                    f"as many boxes as point batches ({points.shape[1]})",
                )
            corners = boxes.to(dtype).reshape(batch, boxes.shape[1], 2, 2)
            parts_coords.append(corners)
            parts_labels.append(
                torch.tensor(BOX_CORNER_LABELS, device=boxes.device).expand(batch, boxes.shape[1], 2)
            )
        elif points is not None:
            pb = points.shape[1]
            parts_coords.append(torch.zeros(batch, pb, 1, 2, dtype=dtype, device=points.device))
            parts_labels.append(
                torch.full((batch, pb, 1), spec.LABEL_NOT_A_POINT, dtype=torch.int64, device=points.device)
            )
        if not parts_coords:
            weight = self.prompt_encoder.not_a_point_embed.weight
            return weight.new_zeros(batch, 1, 0, hidden)
        coords = torch.cat(parts_coords, dim=2)
        point_labels = torch.cat(parts_labels, dim=2)
        return self.prompt_encoder.embed_points(coords, point_labels)
