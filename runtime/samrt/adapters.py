"""Meta ``segment_anything``'s predictor and mask generator, over :class:`samrt.SamRuntime`.

A ``segment_anything`` user switches by changing the import::

    from samrt import SamPredictor, SamAutomaticMaskGenerator, SamRuntime

    predictor = SamPredictor(SamRuntime.load("engines/vit_b"))
    predictor.set_image(image)                       # HWC uint8, RGB
    masks, scores, low_res = predictor.predict(point_coords=np.array([[500, 375]]),
                                               point_labels=np.array([1]))

Same signatures, same outputs (shapes, dtypes; values within the runtime's tolerances of
segment_anything on the same weights): ``masks`` bool [C, H, W] (float32 logits with
``return_logits``), ``scores`` float32 [C], ``low_res_logits`` float32 [C, 256, 256], C = 3 with
``multimask_output`` and 1 without.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InvalidInputError
from .generate import GenerateSettings
from .runtime import ImageEmbedding, SamRuntime

__all__ = ["SamPredictor", "SamAutomaticMaskGenerator"]


class SamPredictor:
    """``segment_anything.SamPredictor`` over an engine: embed once with :meth:`set_image`,
    then :meth:`predict` for one object per call, as often as needed."""

    def __init__(self, runtime: SamRuntime) -> None:
        if not isinstance(runtime, SamRuntime):
            raise InvalidInputError("runtime", type(runtime).__name__, "a SamRuntime (SamRuntime.load(engine_dir))")
        self.runtime = runtime
        self._embedding: ImageEmbedding | None = None

    # -- image -----------------------------------------------------------------------------------
    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Embed ``image`` (HWC uint8; ``image_format`` "RGB" or "BGR", as OpenCV reads files)."""
        if image_format not in ("RGB", "BGR"):
            raise InvalidInputError("image_format", image_format, '"RGB" or "BGR"')
        if image_format == "BGR" and isinstance(image, np.ndarray) and image.ndim == 3:
            image = image[..., ::-1]
        self._embedding = self.runtime.embed(image)

    def set_embedding(self, embedding: ImageEmbedding) -> None:
        """Use an embedding made earlier (e.g. by a service's cache) instead of :meth:`set_image`."""
        if not isinstance(embedding, ImageEmbedding):
            raise InvalidInputError("embedding", type(embedding).__name__, "an ImageEmbedding from embed()")
        self._embedding = embedding

    def reset_image(self) -> None:
        self._embedding = None

    @property
    def is_image_set(self) -> bool:
        return self._embedding is not None

    @property
    def original_size(self) -> tuple[int, int]:
        """(height, width) of the image set."""
        return self._require().original_size

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the image after the resize to the encoder's longest edge."""
        return self._require().reshaped_input_size

    def get_image_embedding(self) -> np.ndarray:
        """float32 [1, C, 64, 64]."""
        return self._require().embeddings

    # -- prompts ---------------------------------------------------------------------------------
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for one object. point_coords [P, 2] (x, y) in original pixels with point_labels
        [P] (1 foreground, 0 background); box [4] (x0, y0, x1, y1) or [1, 4]; mask_input
        [1, 256, 256] low-res logits from a previous call. Returns (masks, scores, low_res_logits)."""
        embedding = self._require()
        if point_coords is not None and point_labels is None:
            raise InvalidInputError("point_labels", None, "labels for point_coords (1 foreground, 0 background)")
        if point_coords is None and point_labels is not None:
            raise InvalidInputError("point_coords", None, "coordinates for point_labels")
        points = None if point_coords is None else np.asarray(point_coords)[None]
        labels = None if point_labels is None else np.asarray(point_labels)[None]
        boxes = None if box is None else np.asarray(box).reshape(-1)[None]
        masks = None if mask_input is None else np.asarray(mask_input)[None]
        prediction = self.runtime.predict(embedding, points=points, labels=labels, boxes=boxes, mask_input=masks,
                                          multimask_output=multimask_output, return_logits=return_logits)
        return prediction.masks[0], prediction.iou_scores[0], prediction.low_res_logits[0]

    def _require(self) -> ImageEmbedding:
        if self._embedding is None:
            raise InvalidInputError("image", None, "an image set with set_image() before predict()")
        return self._embedding


class SamAutomaticMaskGenerator:
    """``segment_anything.SamAutomaticMaskGenerator`` over an engine. ``model``: a
    :class:`SamRuntime` or a :class:`SamPredictor` over one; ``options``: the options of
    :class:`samrt.generate.GenerateSettings` (segment_anything's names and defaults), checked
    here, on construction."""

    def __init__(self, model: SamRuntime | SamPredictor, **options: Any) -> None:
        runtime = model.runtime if isinstance(model, SamPredictor) else model
        if not isinstance(runtime, SamRuntime):
            raise InvalidInputError("model", type(model).__name__, "a SamRuntime or a SamPredictor")
        self.runtime = runtime
        self.settings = GenerateSettings.from_options(options)

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """One record per mask, as segment_anything's (see :meth:`SamRuntime.generate`)."""
        return self.runtime.generate(image, **self.settings.options())
