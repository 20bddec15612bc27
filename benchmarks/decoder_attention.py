"""The decoder's cross-attentions: projections carried into the image's channels vs the textbook form.

``samexport.modeling.transformer.Attention`` runs the token->image and image->token attentions
without projecting the 64x64 image (``attend_to_image`` / ``attend_from_image``). This script
exports the ViT-B decoder (random weights: speed does not depend on them) twice, once as it
ships and once with every cross-attention routed through the plain ``Attention.forward``
(project q, k, v into heads, softmax, out_proj), then in one run on the same machine:
  * times both graphs on onnxruntime's CPU provider with the runner ``SamRuntime.load`` builds
    (arena on, no memory pattern, no spinning, SkipLayerNormFusion off, one prompt per run), in
    alternating rounds, for P = 2 (a point or a box) and P = 17 (samexport build's --max-points 16 + pad);
  * compares their outputs (iou_scores, low_res_masks) on the same feeds.

    python benchmarks/decoder_attention.py [--rounds 7] [--out benchmarks/results/decoder_attention_vit_b_cpu.json]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path

import numpy as np

from samexport.timing import measure, write_record


@contextlib.contextmanager
def textbook_cross_attention():
    """Route attend_to_image / attend_from_image through the plain Attention.forward."""
    from samexport.modeling.transformer import Attention

    saved = Attention.attend_to_image, Attention.attend_from_image
    Attention.attend_to_image = Attention.forward
    Attention.attend_from_image = Attention.forward
    try:
        yield
    finally:
        Attention.attend_to_image, Attention.attend_from_image = saved


def decoder_session(path: Path):
    """The decoder runner exactly as ``SamRuntime.load`` builds it for the CPU provider."""
    from samrt.backends.onnxruntime import decoder_runner

    cpu = ["CPUExecutionProvider"]
    return decoder_runner(path, providers=cpu, running_on=cpu)


def feeds(points: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.ones((1, points), np.int32)
    labels[0, -1] = -1  # SAM's pad point, as the runtime appends it
    return {
        "image_embeddings": rng.normal(size=(1, 256, 64, 64)).astype(np.float32),
        "input_points": (rng.random((1, points, 2)) * 1024).astype(np.float32),
        "input_labels": labels,
        "mask_input": np.zeros((1, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=10, help="runs per graph per round (median taken)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/decoder_attention_vit_b_cpu.json"))
    args = parser.parse_args()

    from samexport.checkpoints.sources import load_source
    from samexport.export import export_decoder

    model, _ = load_source("random:vit_b")
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"carried": Path(tmp) / "carried.onnx", "textbook": Path(tmp) / "textbook.onnx"}
        export_decoder(model, paths["carried"])
        with textbook_cross_attention():
            export_decoder(model, paths["textbook"])
        runners = {name: decoder_session(path) for name, path in paths.items()}
        results = {}
        for points in (2, 17):
            feed = feeds(points, seed=points)
            outputs = {name: runner.infer(feed) for name, runner in runners.items()}
            for runner in runners.values():  # warm-up
                runner.infer(feed)
            per_round: dict[str, list[float]] = {name: [] for name in runners}
            for _ in range(args.rounds):
                for name, runner in runners.items():
                    per_round[name].append(measure(lambda r=runner: r.infer(feed), repeat=args.runs, warmup=0).p50_ms)
            ratios = [c / t for c, t in zip(per_round["carried"], per_round["textbook"], strict=True)]
            low = {name: out["low_res_masks"] for name, out in outputs.items()}
            results[f"points_{points}"] = {
                "median_ms": {name: round(float(np.median(v)), 2) for name, v in per_round.items()},
                "carried_vs_textbook_per_round": [round(r, 3) for r in ratios],
                "carried_vs_textbook_median": round(float(np.median(ratios)), 3),
                "iou_scores_max_abs_diff": float(np.abs(outputs["carried"]["iou_scores"]
                                                        - outputs["textbook"]["iou_scores"]).max()),
                "low_res_masks_max_abs_diff": float(np.abs(low["carried"] - low["textbook"]).max()),
                "low_res_masks_sign_agreement": float(((low["carried"] > 0) == (low["textbook"] > 0)).mean()),
            }
            print(f"P={points}: {results[f'points_{points}']}")
    record = {
        "benchmark": "decoder_cross_attention_carried_vs_textbook",
        "model": "random:vit_b decoder, N = 1 prompt per run",
        "settings": {"rounds": args.rounds, "runs_per_round": args.runs,
                     "onnxruntime": "CPUExecutionProvider, samrt's decoder session settings"},
        "results": results,
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
