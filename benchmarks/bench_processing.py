"""samrt.SamProcessor vs transformers' SamProcessor (both backends): preprocess and
post_process_masks (3 masks), same machine, same run. Each function is timed in its own block
(warm-up, then repeated calls): interleaving call by call makes samrt's threads compete with
the OpenMP workers torch leaves spinning after each of its calls, which measures torch's idle
spin rather than samrt.

Low-res logits: smooth random fields (8x8 random values upsampled: blob-shaped masks like SAM's
real outputs) for the headline figure, and white noise as the worst case for samrt's
boundary-only path (reported, not the target).

The machine's speed drifts by tens of percent over minutes, so the measurement runs in
``--rounds`` rounds, each timing every function (``--repeat`` calls, after warm-up) one after
another; the reported p50 is the median over rounds of each round's p50, and the speedup is the
median over rounds of that round's ratio, so a slow phase weighs on both sides alike.

    python benchmarks/bench_processing.py [--rounds 5] [--repeat 7] [--out benchmarks/results/<machine id>/processing.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from samrt import SamProcessor, post_process_masks
from samrt.upscale import upscale_masks
from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil
from transformers.models.sam.image_processing_sam import SamImageProcessor

from samexport.timing import describe_machine, measure, result_path

SIZES = [(480, 640), (1500, 2250), (3000, 4000)]


def smooth_logits(rng: np.random.Generator) -> np.ndarray:
    coarse = rng.normal(size=(3, 9, 9)).astype(np.float32) * 8
    return upscale_masks(coarse, (256, 256), (256, 256), (256, 256))[None, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/processing.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("processing")
    rng = np.random.default_rng(0)
    ours = SamProcessor()
    hf = {"transformers_torchvision": SamImageProcessor(), "transformers_pil": SamImageProcessorPil()}
    results = []
    for height, width in SIZES:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        inputs = ours(image)
        sizes = (inputs["original_sizes"], inputs["reshaped_input_sizes"])
        torch_sizes = (sizes[0].tolist(), sizes[1].tolist())
        for kind, logits in (("smooth", smooth_logits(rng)),
                             ("noise", rng.normal(size=(1, 1, 3, 256, 256)).astype(np.float32) * 3)):
            torch_logits = torch.from_numpy(logits)
            funcs = {"samrt/pre": lambda: ours(image),
                     "samrt/post": lambda: post_process_masks(logits, *sizes)}
            for name, processor in hf.items():
                funcs[f"{name}/pre"] = lambda p=processor: p(image, return_tensors="pt")
                funcs[f"{name}/post"] = lambda p=processor: p.post_process_masks(torch_logits, *torch_sizes)
            # Parity, so the speed is for the same answer.
            ref = hf["transformers_torchvision"].post_process_masks(torch_logits, *torch_sizes, binarize=False)[0]
            ref_binary = ref.numpy() > 0
            got = post_process_masks(logits, *sizes)[0]
            away = np.abs(ref.numpy()) > 1e-5
            rounds = [{name: measure(func, repeat=args.repeat).p50_ms for name, func in funcs.items()}
                      for _ in range(args.rounds)]
            backends = ("samrt", *hf)
            round_totals = [{b: r[f"{b}/pre"] + r[f"{b}/post"] for b in backends} for r in rounds]
            speedups = [min(t[name] for name in hf) / t["samrt"] for t in round_totals]
            row = {
                "image": f"{width}x{height}", "logits": kind, "masks": 3, "rounds": args.rounds,
                "p50_ms": {name: round(float(np.median([r[name] for r in rounds])), 3) for name in funcs},
                "pre_plus_post_p50_ms": {b: round(float(np.median([t[b] for t in round_totals])), 3)
                                         for b in backends},
                "speedup_vs_fastest_transformers": round(float(np.median(speedups)), 2),
                "speedup_per_round": [round(x, 2) for x in speedups],
                "binary_masks_differ_away_from_threshold": int((got != ref_binary)[away].sum()),
            }
            results.append(row)
            print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "processing", "machine": describe_machine(),
                                    "torch_threads": torch.get_num_threads(), "results": results}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
