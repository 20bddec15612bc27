"""Memory soak at full count (issue 8): 1,000 requests through one SamRuntime, RSS curve as JSON.

    python benchmarks/soak_memory.py --engine engines/vit_b [--requests 1000] [--out results/soak_<engine>.json]

Target: resident memory grows by less than 50 MB after warm-up. CI runs a reduced count on a
tiny engine (tests/samrt/test_soak.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from samrt import SamRuntime

from samexport.soak import soak
from samexport.timing import describe_machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=28)
    parser.add_argument("--max-prompts", type=int, default=64)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    runtime = SamRuntime.load(args.engine, backend="onnxruntime", warmup=True)
    result = soak(runtime, requests=args.requests, warmup=args.warmup, max_prompts=args.max_prompts,
                  progress=lambda d, t: print(f"{d}/{t}", end="\r", flush=True))
    out = args.out or Path(__file__).parent / "results" / f"soak_{args.engine.name}.json"
    out.write_text(json.dumps({"machine": describe_machine(), "engine": str(args.engine), **result}) + "\n")
    print(f"\ngrowth after warm-up: {result['growth_mb']} MB (max {result['rss_max_mb']} MB); wrote {out}")


if __name__ == "__main__":
    main()
