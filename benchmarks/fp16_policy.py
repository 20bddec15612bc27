"""Derive the FP16 precision policy by measurement: every candidate policy of
:mod:`samexport.precision`, emulated on the CPU (FP32 graphs that round like FP16), against the
FP32 PyTorch reference on real photographs (scikit-image's astronaut, coffee, chelsea; N prompts
of each of the five kinds per image), for each engine given (plain random and stress weights).

    samexport export --model random:vit_b --out engines/vit_b
    samexport export --model random:vit_b-stress --out engines/vit_b-stress
    python benchmarks/fp16_policy.py --engines engines/vit_b engines/vit_b-stress \
        [--policies naive layernorm ...] [--prompts 8] [--real-fp16] \
        [--out benchmarks/results/<machine id>/fp16_policy_vit_b.json]

``--real-fp16`` also runs the actual FP16 ONNX graphs (``samexport build --precision fp16``) on
onnxruntime's CPU provider, to show how far that is from the emulation. Issue 5's bar for the
chosen policy: embedding cosine >= 0.999 and mask IoU >= 0.98 for >= 99% of prompts; naive FP16
on stress weights must fail (NaN/inf, or mask IoU < 0.9).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from samexport.build import BuildSettings, build_engine
from samexport.precision import DEFAULT_POLICY, POLICIES
from samexport.timing import describe_machine, result_path


def summarise(report: dict) -> dict:
    entry = report["backends"]["onnxruntime"]
    ious = np.array([p["mask_iou"] for p in entry["prompts"]])
    nonfinite = int(sum(p["nonfinite"] for p in entry["prompts"]))
    return {
        "passed": entry["passed"],
        "prompts": int(ious.size),
        # NaN when an image's embedding was not finite (counted in embeddings_nonfinite)
        "embeddings_cosine_min": float(np.min([e["cosine"] for e in entry["embeddings"]])),
        "embeddings_nonfinite": int(sum(e["nonfinite"] for e in entry["embeddings"])),
        "outputs_nonfinite": nonfinite,
        "share_mask_iou_at_least_0.98": float((ious >= 0.98).mean()),
        "share_mask_iou_below_0.9": float((ious < 0.9).mean()),
        "mask_iou": entry["all"]["mask_iou"],
        "iou_scores_max_abs": entry["all"]["iou_scores"]["max_abs"],
        "failed": [c for c in entry["checks"] if not c["passed"]],
    }


def run_case(engine: Path, policy: str, emulate: bool, prompts: int, scratch: Path) -> dict:
    started = time.perf_counter()
    built = build_engine(engine, settings=BuildSettings(precision="fp16", policy=policy, emulate=emulate,
                                                        check_prompts=0),
                         out_dir=scratch / f"{engine.name}-{policy}-{'emulated' if emulate else 'fp16'}")
    report_dir = scratch / "report"
    # its own process: a ViT-B report peaks near 12 GB resident
    subprocess.run([sys.executable, "-m", "samexport.cli", "report", str(built), "--worst", "0",
                    "--prompts", str(prompts), "--out", str(report_dir)], check=False)
    summary = summarise(json.loads((report_dir / "report.json").read_text()))
    shutil.rmtree(built)
    shutil.rmtree(report_dir)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", type=Path, nargs="+", required=True, help="fp32 engine directories")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--prompts", type=int, default=8, help="prompts of each kind per image")
    parser.add_argument("--real-fp16", action="store_true", help="also run the FP16 ONNX on onnxruntime CPU")
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/fp16_policy_vit_b.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("fp16_policy_vit_b")
    scratch = Path(tempfile.mkdtemp(prefix="fp16_policy_"))
    results: dict[str, dict] = {}
    for engine in args.engines:
        manifest = json.loads((engine / "manifest.json").read_text())
        cases: dict[str, dict] = {}
        for policy in args.policies:
            cases[f"emulated/{policy}"] = run_case(engine, policy, True, args.prompts, scratch)
            print(engine.name, "emulated", policy, json.dumps({k: v for k, v in cases[f"emulated/{policy}"].items()
                                                              if k != "failed"}), flush=True)
        if args.real_fp16:
            for policy in ("naive", DEFAULT_POLICY.name):
                cases[f"onnxruntime-cpu-fp16/{policy}"] = run_case(engine, policy, False, args.prompts, scratch)
                print(engine.name, "real fp16", policy, cases[f"onnxruntime-cpu-fp16/{policy}"]["passed"], flush=True)
        results[manifest["model"]["source"]] = cases
    record = {"machine": describe_machine(), "images": ["astronaut", "coffee", "chelsea"],
              "prompts_per_kind": args.prompts, "policies": {n: POLICIES[n].to_dict() for n in args.policies},
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
