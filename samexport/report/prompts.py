"""Deterministic prompts for the accuracy report, in original-image pixels.

Kinds (``PROMPT_KINDS``):

- ``point``: one foreground point.
- ``points``: two foreground points and one background point.
- ``box``: one box.
- ``point_box``: one foreground point inside a box.
- ``refine``: the ``point`` prompts again with a second foreground point, and ``mask_input`` =
  the low-res logits of the first round's best mask. Each side refines its *own* first-round
  output (as a service would), so errors that compound over rounds show up here.

The same (seed, image size, count) always gives the same prompts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROMPT_KINDS = ("point", "points", "box", "point_box", "refine")


@dataclass(frozen=True, kw_only=True)
class PromptSet:
    """N prompts of one kind. points float32 [N, P, 2] (x, y) or None; labels int32 [N, P] or
    None; boxes float32 [N, 4] (x0, y0, x1, y1) or None; ``refine`` marks a second round."""

    kind: str
    points: np.ndarray | None
    labels: np.ndarray | None
    boxes: np.ndarray | None
    refine: bool = False

    @property
    def count(self) -> int:
        return len(self.points if self.points is not None else self.boxes)


def _boxes(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    size = rng.uniform(0.1, 0.6, (n, 2)) * (width, height)
    corner = rng.random((n, 2)) * ((width, height) - size)
    return np.concatenate([corner, corner + size], axis=1).astype(np.float32)


def sample_prompts(height: int, width: int, *, count: int, seed: int = 0) -> list[PromptSet]:
    """``count`` prompts of each kind for an image of ``height`` x ``width`` pixels."""
    rng = np.random.default_rng(seed)
    scale = np.array([width, height], np.float64)
    first = (rng.random((count, 1, 2)) * scale).astype(np.float32)
    second = (rng.random((count, 1, 2)) * scale).astype(np.float32)
    negative = (rng.random((count, 1, 2)) * scale).astype(np.float32)
    boxes = _boxes(rng, count, height, width)
    inside = boxes[:, None, :2] + rng.uniform(0.25, 0.75, (count, 1, 2)).astype(np.float32) * (
        boxes[:, None, 2:] - boxes[:, None, :2])
    ones = np.ones((count, 1), np.int32)
    return [
        PromptSet(kind="point", points=first, labels=ones, boxes=None),
        PromptSet(kind="points", points=np.concatenate([first, second, negative], axis=1),
                  labels=np.concatenate([ones, ones, 0 * ones], axis=1), boxes=None),
        PromptSet(kind="box", points=None, labels=None, boxes=boxes),
        PromptSet(kind="point_box", points=inside.astype(np.float32), labels=ones, boxes=boxes),
        PromptSet(kind="refine", points=np.concatenate([first, second], axis=1),
                  labels=np.concatenate([ones, ones], axis=1), boxes=None, refine=True),
    ]
