"""Turn a backend comparison (``compare_backend``'s result) and thresholds into pass/fail checks."""

from __future__ import annotations

import math
from typing import Any

from .prompts import PROMPT_KINDS

# threshold key -> (output it concerns, how to read the metric from an aggregate)
_MASK_METRICS = {
    "iou_scores_max_abs_max": ("iou_scores", lambda a: a["iou_scores"]["max_abs"]),
    "low_res_logits_p99_abs_max": ("low_res_logits", lambda a: a["low_res_logits"]["p99_abs"]),
    "mask_iou_min_min": ("masks", lambda a: a["mask_iou"]["min"]),
    "mask_iou_p1_min": ("masks", lambda a: a["mask_iou"]["p1"]),
    "mask_iou_p5_min": ("masks", lambda a: a["mask_iou"]["p5"]),
    "mask_iou_mean_min": ("masks", lambda a: a["mask_iou"]["mean"]),
    "boundary_f_mean_min": ("masks", lambda a: a["boundary_f"]["mean"]),
    "best_mask_agreement_min": ("iou_scores", lambda a: a["best_mask_agreement"]),
}


def _passes(key: str, value: float, limit: float) -> bool:
    if math.isnan(value):
        return False
    return value >= limit if key.endswith("_min") else value <= limit


def _check(key: str, output: str, kind: str, value: float, limit: float) -> dict[str, Any]:
    return {"key": key, "output": output, "kind": kind, "value": value, "threshold": limit,
            "passed": _passes(key, value, limit)}


def evaluate(result: dict[str, Any], thresholds: dict[str, float | None]) -> list[dict[str, Any]]:
    """One record per (threshold, prompt kind): key, output, kind ("all" or a prompt kind),
    value, threshold, passed. Checks whose threshold is None are left out."""
    checks: list[dict[str, Any]] = []
    embeddings = result["embeddings"]
    if thresholds.get("embeddings_cosine_min") is not None:
        worst = min((e["cosine"] for e in embeddings), key=lambda v: (not math.isnan(v), v))
        checks.append(_check("embeddings_cosine_min", "image_embeddings", "all", worst,
                             thresholds["embeddings_cosine_min"]))
    if thresholds.get("embeddings_max_abs_max") is not None:
        checks.append(_check("embeddings_max_abs_max", "image_embeddings", "all",
                             max(e["max_abs"] for e in embeddings), thresholds["embeddings_max_abs_max"]))
    for key, (output, read) in _MASK_METRICS.items():
        limit = thresholds.get(key)
        if limit is None:
            continue
        for kind in ("all", *PROMPT_KINDS):
            aggregate = result["all"] if kind == "all" else result["kinds"][kind]
            if aggregate.get("count"):
                checks.append(_check(key, output, kind, float(read(aggregate)), limit))
    if thresholds.get("nonfinite_max") is not None:
        count = sum(e["nonfinite"] for e in embeddings) + result["all"].get("nonfinite", 0)
        checks.append(_check("nonfinite_max", "all outputs", "all", count, thresholds["nonfinite_max"]))
    return checks


def describe_failure(check: dict[str, Any]) -> str:
    """One sentence for a failed check, naming the output and the prompt kind."""
    relation = "<" if check["key"].endswith("_min") else ">"
    where = "all prompts" if check["kind"] == "all" else f"prompt kind {check['kind']!r}"
    return (f"{check['output']}: {check['key']} = {check['value']:.6g} {relation} {check['threshold']:.6g} "
            f"({where})")
