"""int8 (dynamic quantisation, onnxruntime CPU; ``--int8-terms`` / ``--int8-activation-terms`` as the build's) against fp32 onnxruntime, ViT-B, same machine, same run:
encoder and decoder latency side by side, and the accuracy report of the int8 engine against the fp32
PyTorch reference (scikit-image's astronaut, coffee, chelsea; 8 prompts of each kind per image).

    python benchmarks/bench_int8.py --engine engines/vit_b [--out benchmarks/results/<machine id>/int8_two_term_two_activation_vit_b.json]

Issue 5's targets: int8 encoder time <= 0.5x fp32; mask IoU >= 0.95 for >= 95% of prompts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from samexport.bench import synthetic_image
from samexport.build import BuildSettings, build_engine
from samexport.timing import describe_machine, measure, result_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", type=Path, required=True, help="fp32 engine directory (samexport export)")
    parser.add_argument("--int8", type=Path, default=None, help="existing int8 build of --engine")
    parser.add_argument("--int8-terms", type=int, default=2, choices=(1, 2),
                        help="int8 terms per weight (samexport build --int8-terms); the older one-term records used 1")
    parser.add_argument("--int8-activation-terms", type=int, default=None, choices=(1, 2),
                        help="int8 terms per activation (samexport build --int8-activation-terms; default as the build's)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/int8_two_term_two_activation_vit_b.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("int8_two_term_two_activation_vit_b")
    from samrt import SamRuntime

    settings = BuildSettings(precision="int8", int8_terms=args.int8_terms,
                             int8_activation_terms=args.int8_activation_terms, check_prompts=0)
    int8_dir = args.int8 or build_engine(args.engine, settings=settings, out_dir=Path(tempfile.mkdtemp()) / "int8")
    # The report in its own process: the reference and the sessions of a ViT-B report peak near
    # 12 GB resident, which beside this process's sessions overran a 24 GB machine,
    # so it runs first, before this process loads anything.
    report_dir = Path(tempfile.mkdtemp()) / "report"
    subprocess.run([sys.executable, "-m", "samexport.cli", "report", str(int8_dir), "--worst", "0",
                    "--out", str(report_dir)], check=False)
    record = json.loads((report_dir / "report.json").read_text())
    engines = {"fp32": SamRuntime.load(args.engine, backend="onnxruntime"),
               "int8": SamRuntime.load(int8_dir, backend="onnxruntime")}
    image = synthetic_image(1500, 2250)
    pixels = engines["fp32"].processor.preprocess_image(image)[0][None]
    embedding = engines["fp32"].embed(image)
    feeds = engines["fp32"].decoder_feeds(embedding, np.array([[[1000.0, 700.0]]]), None, None, None)
    timings: dict[str, dict] = {}
    for name, runtime in engines.items():
        timings[name] = {
            "encoder": measure(lambda: runtime.encoder.infer({"pixel_values": pixels}), repeat=args.runs).to_dict(),
            "decoder_n1": measure(lambda: runtime.decoder.infer(feeds), repeat=20).to_dict(),
        }
        print(name, timings[name])
    entry = record["backends"]["onnxruntime"]
    ious = np.array([p["mask_iou"] for p in entry["prompts"]])
    result = {
        "machine": describe_machine(),
        "engine": str(args.engine),
        "int8_terms": None if args.int8 else args.int8_terms,
        "int8_activation_terms": None if args.int8 else settings.activation_terms,
        "timings": timings,
        "ratios": {k: round(timings["int8"][k]["p50_ms"] / timings["fp32"][k]["p50_ms"], 3)
                   for k in ("encoder", "decoder_n1")},
        "accuracy": {"passed": entry["passed"], "prompts": int(ious.size),
                     "share_mask_iou_at_least_0.95": float((ious >= 0.95).mean()),
                     "mask_iou": entry["all"]["mask_iou"], "boundary_f": entry["all"]["boundary_f"],
                     "embeddings_cosine_min": min(e["cosine"] for e in entry["embeddings"]),
                     "iou_scores_max_abs": entry["all"]["iou_scores"]["max_abs"],
                     "failed": [c for c in entry["checks"] if not c["passed"]]},
    }
    print(json.dumps({k: result[k] for k in ("ratios", "accuracy")}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
