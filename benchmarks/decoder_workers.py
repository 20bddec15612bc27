"""A CPU batch of prompts: shared over threads (one prompt per thread at a time) vs in turn.

``SamRuntime.predict`` runs the decoder graph once per prompt on onnxruntime's CPU provider.
With ``decoder_workers`` > 1 (the default: the usable cores, at most 8) a call of several
prompts shares them out over that many threads, each running whole prompts in a session limited
to one intra-op thread; with 1 they run one after another in the session that single-prompt
calls use (every operator split over the intra-op threads). This script builds both decoder
runners from one ViT-B decoder graph (random weights: speed does not depend on them) and times,
in alternating rounds of one run:
  * a single-prompt call (the reference the issue's "per prompt no worse than a single call"
    compares with);
  * a 64-prompt call in turn (decoder_workers=1) and shared (the default);
then checks both batch outputs against each other. (Memory: the second session and its arena
add ~40 MB resident on ViT-B; see the README's "Speed on a CPU".)

    python benchmarks/decoder_workers.py [--engine DIR] [--rounds 7] \
        [--out benchmarks/results/<machine id>/decoder_workers_vit_b.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from samexport.timing import measure, peak_rss_mb, result_path, write_record


def feeds(prompts: int, seed: int) -> dict[str, np.ndarray]:
    """One point plus SAM's pad point per prompt, as the runtime sends a click."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.array([[1, -1]], np.int32), (prompts, 1))
    return {
        "image_embeddings": rng.normal(size=(1, 256, 64, 64)).astype(np.float32),
        "input_points": (rng.random((prompts, 2, 2)) * 1024).astype(np.float32),
        "input_labels": labels,
        "mask_input": np.zeros((prompts, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(prompts, np.float32),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", type=Path, help="an engine directory (default: export random:vit_b's decoder)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/decoder_workers_vit_b.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("decoder_workers_vit_b")

    from samrt.backends.onnxruntime import decoder_row_workers, decoder_runner

    cpu = ["CPUExecutionProvider"]
    with tempfile.TemporaryDirectory() as tmp:
        if args.engine is not None:
            path = args.engine / "decoder.onnx"
        else:
            from samexport.checkpoints.sources import load_source
            from samexport.export import export_decoder

            path = Path(tmp) / "decoder.onnx"
            export_decoder(load_source("random:vit_b")[0], path)
        workers = decoder_row_workers(cpu)
        in_turn = decoder_runner(path, providers=cpu, running_on=cpu, workers=1)
        shared = decoder_runner(path, providers=cpu, running_on=cpu)
        single, batch = feeds(1, seed=1), feeds(args.prompts, seed=2)
        outputs = {"in_turn": in_turn.infer(batch), "shared": shared.infer(batch)}
        in_turn.infer(single)
        calls = {
            "single_prompt": (lambda: in_turn.infer(single), 10, 1),
            f"batch_{args.prompts}_in_turn": (lambda: in_turn.infer(batch), 1, args.prompts),
            f"batch_{args.prompts}_shared": (lambda: shared.infer(batch), 1, args.prompts),
        }
        per_prompt: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.rounds):
            for name, (call, runs, prompts) in calls.items():
                per_prompt[name].append(measure(call, repeat=runs, warmup=0).p50_ms / prompts)

    def ratios(name: str) -> list[float]:
        return [round(b / s, 3) for b, s in zip(per_prompt[name], per_prompt["single_prompt"], strict=True)]

    results = {
        "ms_per_prompt_per_round": {name: [round(v, 2) for v in values] for name, values in per_prompt.items()},
        "ms_per_prompt_median": {name: round(float(np.median(v)), 2) for name, v in per_prompt.items()},
        "per_prompt_vs_single_call_per_round": {name: ratios(name) for name in calls if name != "single_prompt"},
        "per_prompt_vs_single_call_median": {name: round(float(np.median(ratios(name))), 3)
                                             for name in calls if name != "single_prompt"},
        "shared_vs_in_turn_max_abs_diff": {
            key: float(np.abs(outputs["shared"][key] - outputs["in_turn"][key]).max()) for key in outputs["shared"]},
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(results, indent=2))
    record = {
        "benchmark": "decoder_batch_shared_over_threads_vs_in_turn",
        "model": f"random:vit_b decoder, one point per prompt, {args.prompts} prompts per batch call",
        "settings": {"rounds": args.rounds, "workers": workers, "single_prompt_runs_per_round": 10,
                     "batch_runs_per_round": 1,
                     "onnxruntime": "CPUExecutionProvider, samrt's decoder runner (samrt.backends.onnxruntime)"},
        "results": results,
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
