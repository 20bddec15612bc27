"""Run the same images and prompts through the reference and a backend; measure the differences.

Both sides are ``samrt.SamRuntime`` objects (the reference one from
``samexport.torch_runner.reference_runtime``), so pre- and post-processing are the same code and
every difference comes from the graphs. Each prompt is predicted with ``multimask_output=True``;
mask metrics are taken on the token the *reference* scores best.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .metrics import boundary_f_score, distribution, mask_iou, tensor_errors
from .prompts import PROMPT_KINDS, PromptSet, sample_prompts

# |error| histogram bins for the plots: decades from 1e-9 to 1e3, plus under/overflow.
ERROR_BINS = np.concatenate([[0.0], np.logspace(-9, 3, 49), [np.inf]])

# The reference's own scores for two tokens closer than this make its choice ambiguous: a
# backend that picks the other one still agrees.
AMBIGUOUS_SCORE_MARGIN = 0.01


@dataclass(frozen=True, kw_only=True)
class CompareSettings:
    """prompts_per_kind: N prompts of each kind per image; worst_cases: overlays kept."""

    prompts_per_kind: int = 8
    seed: int = 0
    worst_cases: int = 6
    boundary_tolerance: int | None = None


@dataclass(order=True)
class WorstCase:
    """One prompt's outcome kept for an overlay (ordered by ``mask_iou``, lowest first)."""

    neg_iou: float
    serial: int
    image: str = field(compare=False)
    kind: str = field(compare=False)
    index: int = field(compare=False)
    mask_iou: float = field(compare=False)
    reference_mask: np.ndarray = field(compare=False, repr=False)
    backend_mask: np.ndarray = field(compare=False, repr=False)
    points: np.ndarray | None = field(compare=False, repr=False)
    labels: np.ndarray | None = field(compare=False, repr=False)
    box: np.ndarray | None = field(compare=False, repr=False)


def _select(prompts: PromptSet, i: int) -> dict[str, Any]:
    return {
        "points": None if prompts.points is None else prompts.points[i],
        "labels": None if prompts.labels is None else prompts.labels[i],
        "box": None if prompts.boxes is None else prompts.boxes[i],
    }


def _best_logits(prediction: Any) -> np.ndarray:
    best = prediction.iou_scores.argmax(axis=1)
    return prediction.low_res_logits[np.arange(len(best)), best][:, None]


def compare_backend(reference: Any, backend: Any, images: Sequence[tuple[str, np.ndarray]], *,
                    settings: CompareSettings | None = None,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Compare ``backend`` with ``reference`` (both ``SamRuntime``) on ``images`` ((name, uint8
    [H, W, 3]) pairs). Returns ``{"embeddings": [...per image], "prompts": [...per prompt],
    "kinds": {kind: aggregate}, "all": aggregate, "worst": [WorstCase, ...]}``."""
    settings = settings or CompareSettings()
    per_image: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    logits: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in PROMPT_KINDS}
    worst: list[WorstCase] = []
    histograms = {"image_embeddings": np.zeros(len(ERROR_BINS) - 1, np.int64),
                  "low_res_logits": np.zeros(len(ERROR_BINS) - 1, np.int64)}
    serial = 0
    for done, (name, rgb) in enumerate(images, start=1):
        ref_emb, emb = reference.embed(rgb), backend.embed(rgb)
        per_image.append({"image": name, "size": list(rgb.shape[:2]),
                          **tensor_errors(ref_emb.embeddings, emb.embeddings)})
        histograms["image_embeddings"] += _error_histogram(ref_emb.embeddings, emb.embeddings)
        first_round: dict[str, Any] = {}
        prompt_sets = sample_prompts(*rgb.shape[:2], count=settings.prompts_per_kind, seed=settings.seed + done)
        for prompts in prompt_sets:
            kwargs = {"points": prompts.points, "labels": prompts.labels, "boxes": prompts.boxes}
            ref_masks_in = out_masks_in = None
            if prompts.refine:
                ref_masks_in, out_masks_in = (_best_logits(p) for p in first_round["point"])
                # A backend whose first round was non-finite (already counted against it) still
                # gets a refine round: its NaN/inf logits become 0 instead of aborting the report.
                out_masks_in = np.where(np.isfinite(out_masks_in), out_masks_in, np.float32(0))
            ref = reference.predict(ref_emb, mask_input=ref_masks_in, **kwargs)
            out = backend.predict(emb, mask_input=out_masks_in, **kwargs)
            first_round[prompts.kind] = (ref, out)
            logits[prompts.kind].append((ref.low_res_logits, out.low_res_logits))
            histograms["low_res_logits"] += _error_histogram(ref.low_res_logits, out.low_res_logits)
            ref_best = ref.iou_scores.argmax(axis=1)
            out_best = out.iou_scores.argmax(axis=1)
            for i in range(prompts.count):
                k = int(ref_best[i])
                ref_mask, out_mask = ref.masks[i, k], out.masks[i, k]
                iou = float(mask_iou(ref_mask, out_mask))
                gap = float(ref.iou_scores[i, k] - ref.iou_scores[i, out_best[i]])
                nonfinite = int((~np.isfinite(out.iou_scores[i])).sum() + (~np.isfinite(out.low_res_logits[i])).sum())
                records.append({
                    "image": name, "kind": prompts.kind, "index": i,
                    "mask_iou": iou,
                    "mask_iou_all_tokens": [float(v) for v in mask_iou(ref.masks[i], out.masks[i])],
                    "boundary_f": boundary_f_score(ref_mask, out_mask, tolerance=settings.boundary_tolerance),
                    "iou_scores_abs_err": float(np.abs(ref.iou_scores[i] - out.iou_scores[i]).max()),
                    "best_token_reference": k, "best_token_backend": int(out_best[i]),
                    "best_agrees": bool(out_best[i] == k or gap <= AMBIGUOUS_SCORE_MARGIN),
                    "nonfinite": nonfinite,
                })
                serial += 1
                case = WorstCase(-iou, serial, name, prompts.kind, i, iou, ref_mask, out_mask, **_select(prompts, i))
                if len(worst) < settings.worst_cases:
                    heapq.heappush(worst, case)
                elif settings.worst_cases and case > worst[0]:
                    heapq.heapreplace(worst, case)
        if progress is not None:
            progress(done, len(images))
    kinds = {kind: _aggregate([r for r in records if r["kind"] == kind], logits[kind]) for kind in PROMPT_KINDS}
    everything = _aggregate(records, [pair for kind in PROMPT_KINDS for pair in logits[kind]])
    return {"embeddings": per_image, "prompts": records, "kinds": kinds, "all": everything,
            "histograms": {name: {"bin_edges": ERROR_BINS.tolist(), "counts": counts.tolist()}
                           for name, counts in histograms.items()},
            "worst": sorted(worst, key=lambda c: c.mask_iou)}


def _error_histogram(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Counts of |candidate - reference| per ERROR_BINS bin (non-finite errors in the last)."""
    diff = np.abs(candidate.astype(np.float64) - reference.astype(np.float64)).ravel()
    diff[~np.isfinite(diff)] = np.inf
    return np.histogram(np.minimum(diff, 1e300), bins=ERROR_BINS[:-1].tolist() + [1e301])[0]


def _aggregate(records: list[dict[str, Any]], logits: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    if not records:
        return {"count": 0}
    ref = np.concatenate([a for a, _ in logits]) if logits else np.zeros(0, np.float32)
    out = np.concatenate([b for _, b in logits]) if logits else np.zeros(0, np.float32)
    iou_err = np.array([r["iou_scores_abs_err"] for r in records])
    return {
        "count": len(records),
        "mask_iou": distribution([r["mask_iou"] for r in records]),
        "boundary_f": distribution([r["boundary_f"] for r in records]),
        "best_mask_agreement": float(np.mean([r["best_agrees"] for r in records])),
        "iou_scores": {"max_abs": float(np.nan_to_num(iou_err, nan=np.inf).max()),
                       "mean_abs": float(np.nan_to_num(iou_err, nan=np.inf).mean())},
        "low_res_logits": tensor_errors(ref, out),
        "nonfinite": int(sum(r["nonfinite"] for r in records)),
    }
