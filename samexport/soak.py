"""Memory soak: many requests of varying image sizes and prompt counts through one ``SamRuntime``.

Each request embeds an image of a random size (64x64 up to 4000x3000) and predicts 1 to
``max_prompts`` objects (points, boxes or both, sometimes with ``mask_input``). Resident memory is
sampled after every request; the growth after warm-up is the figure of merit (onnxruntime's arena
grows on new input shapes: onnxruntime #11118).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from samrt import SamRuntime

from .timing import describe_machine, resident_mb

SIZES = ((64, 64), (480, 640), (1500, 2250), (3000, 4000), (333, 999), (999, 333), (1024, 1024))


def soak(runtime: Any, *, requests: int, warmup: int, max_prompts: int = 64, mask_budget_mb: float = 256,
         seed: int = 0, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run ``requests`` requests; returns {"rss_mb": [...per request], "warmup", "growth_mb", ...}.

    ``growth_mb`` = peak RSS after warm-up minus peak RSS during warm-up (RSS swings by tens of
    MB between requests of different sizes; a leak shows as peaks that keep rising);
    ``trend_mb`` = median of the last quarter minus median of the first quarter after warm-up.
    The first ``warmup`` requests cycle through every image size and the largest prompt count,
    so every shape class has been seen once before measuring. The prompt count is capped so
    that one request's full-resolution masks (N x 3 x H x W bool) stay within
    ``mask_budget_mb``: 64 objects on a 4000x3000 image are 2.3 GB of masks by construction.
    """
    rng = np.random.default_rng(seed)
    rss: list[float] = []
    for i in range(requests):
        if i < warmup:
            h, w = SIZES[i % len(SIZES)]
            n = max_prompts if i % 2 else 1
        else:
            h, w = SIZES[int(rng.integers(len(SIZES)))]
            n = int(rng.integers(1, max_prompts + 1))
        n = max(1, min(n, int(mask_budget_mb * 2**20 // (3 * h * w))))
        patch = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)  # tiled: random pixels cost seconds at 12 MP
        image = np.tile(patch, (-(-h // 64), -(-w // 64), 1))[:h, :w]
        embedding = runtime.embed(image)
        points = rng.random((n, 2, 2)) * (w, h)
        boxes = np.sort(rng.random((n, 2, 2)) * (w, h), axis=1).reshape(n, 4)
        kind = i % 3
        result = runtime.predict(embedding, points=points if kind != 1 else None, boxes=boxes if kind else None)
        if i % 5 == 0:
            runtime.predict(embedding, points=points, mask_input=result.low_res_logits[:, :1])
        del result, embedding, image
        rss.append(round(resident_mb(), 1))
        if progress is not None:
            progress(i + 1, requests)
    if not 0 < warmup < requests:
        raise ValueError(f"warmup must lie in 1..{requests - 1}, got {warmup}")
    measured = rss[warmup:]
    quarter = max(1, len(measured) // 4)
    return {"requests": requests, "warmup": warmup, "max_prompts": max_prompts, "mask_budget_mb": mask_budget_mb,
            "rss_mb": rss, "rss_warmup_peak_mb": max(rss[:warmup]), "rss_max_mb": max(measured),
            "growth_mb": round(max(measured) - max(rss[:warmup]), 1),
            "trend_mb": round(float(np.median(measured[-quarter:]) - np.median(measured[:quarter])), 1)}


def main(argv: list[str] | None = None) -> None:
    """``python -m samexport.soak --engine DIR [--requests N] [--warmup W] [--max-prompts P] --out FILE``:
    the soak in a fresh process (RSS of a process that already did other work says little)."""
    import argparse
    import json
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m samexport.soak", description=main.__doc__)
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=28)
    parser.add_argument("--max-prompts", type=int, default=64)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    runtime = SamRuntime.load(args.engine, backend="onnxruntime", warmup=True)
    result = soak(runtime, requests=args.requests, warmup=args.warmup, max_prompts=args.max_prompts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": describe_machine(), "engine": str(args.engine), **result}) + "\n")
    print(f"growth after warm-up: {result['growth_mb']} MB (peak {result['rss_max_mb']} MB); wrote {args.out}")


if __name__ == "__main__":
    main()
