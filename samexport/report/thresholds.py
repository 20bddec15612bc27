"""Pass/fail thresholds of the accuracy report: defaults per precision, overridable from a file.

Each key names a metric and its direction (``_min``: the metric must be at least the value;
``_max``: at most). A value of ``null`` in a thresholds file switches a check off. Mask metrics
are checked per prompt kind *and* over all prompts, so a failure names the kind.

| key | metric |
| --- | --- |
| embeddings_cosine_min | worst per-image cosine similarity of the image embeddings |
| embeddings_max_abs_max | largest absolute embedding error over all images |
| iou_scores_max_abs_max | largest absolute error of the predicted IoU scores |
| low_res_logits_p99_abs_max | 99th percentile of the absolute low-res mask logit error |
| mask_iou_min_min / mask_iou_p1_min / mask_iou_p5_min / mask_iou_mean_min | binary mask IoU against the reference (min, 1st and 5th percentile, mean over prompts) |
| boundary_f_mean_min | mean boundary F-score against the reference |
| best_mask_agreement_min | share of prompts whose best-scored mask is the reference's (or one it scores within 0.01) |
| nonfinite_max | NaN / inf values in any output |
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from samrt.errors import InvalidInputError

DEFAULTS: dict[str, dict[str, float | None]] = {
    # fp32 must reproduce the reference up to float rounding and kernel order.
    "fp32": {
        "embeddings_cosine_min": 0.99999, "embeddings_max_abs_max": 1e-2, "iou_scores_max_abs_max": 1e-3,
        "low_res_logits_p99_abs_max": 1e-3, "mask_iou_min_min": 0.95, "mask_iou_p1_min": 0.99,
        "mask_iou_p5_min": None, "mask_iou_mean_min": 0.999, "boundary_f_mean_min": 0.99,
        "best_mask_agreement_min": 0.95, "nonfinite_max": 0,
    },
    # fp16's bar: embedding cosine >= 0.999, mask IoU >= 0.98 for >= 99% of prompts.
    "fp16": {
        "embeddings_cosine_min": 0.999, "embeddings_max_abs_max": None, "iou_scores_max_abs_max": 0.02,
        "low_res_logits_p99_abs_max": None, "mask_iou_min_min": None, "mask_iou_p1_min": 0.98,
        "mask_iou_p5_min": None, "mask_iou_mean_min": 0.99, "boundary_f_mean_min": 0.95,
        "best_mask_agreement_min": 0.9, "nonfinite_max": 0,
    },
    # bf16 (OpenVINO): fp16's bar; bf16 keeps fewer mantissa bits but fp32's range.
    "bf16": {
        "embeddings_cosine_min": 0.999, "embeddings_max_abs_max": None, "iou_scores_max_abs_max": 0.02,
        "low_res_logits_p99_abs_max": None, "mask_iou_min_min": None, "mask_iou_p1_min": 0.98,
        "mask_iou_p5_min": None, "mask_iou_mean_min": 0.99, "boundary_f_mean_min": 0.95,
        "best_mask_agreement_min": 0.9, "nonfinite_max": 0,
    },
    # dynamic int8: mask IoU >= 0.95 for >= 95% of prompts.
    "int8": {
        "embeddings_cosine_min": 0.99, "embeddings_max_abs_max": None, "iou_scores_max_abs_max": 0.05,
        "low_res_logits_p99_abs_max": None, "mask_iou_min_min": None, "mask_iou_p1_min": None,
        "mask_iou_p5_min": 0.95, "mask_iou_mean_min": 0.97, "boundary_f_mean_min": 0.9,
        "best_mask_agreement_min": 0.85, "nonfinite_max": 0,
    },
}
KEYS = tuple(DEFAULTS["fp32"])


def thresholds_for(precision: str, overrides_file: str | Path | None = None) -> dict[str, float | None]:
    """The defaults for ``precision`` ("fp32", "fp16", "int8"), updated from a JSON object file.

    Raises InvalidInputError for an unknown precision, an unreadable or non-object file, unknown
    keys (all of them named), or values that are not numbers or null.
    """
    if precision not in DEFAULTS:
        raise InvalidInputError("precision", precision, f"one of {sorted(DEFAULTS)}")
    chosen = dict(DEFAULTS[precision])
    if overrides_file is None:
        return chosen
    path = Path(overrides_file)
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError("--thresholds", str(path), f"a readable JSON file ({exc.strerror or exc})") from exc
    except ValueError as exc:
        raise InvalidInputError("--thresholds", str(path), f"valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise InvalidInputError("--thresholds", type(data).__name__, "a JSON object of threshold keys")
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise InvalidInputError("--thresholds", unknown, f"keys among {list(KEYS)}")
    for key, value in data.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidInputError(f"--thresholds {key}", value, "a number or null")
        chosen[key] = value
    return chosen
