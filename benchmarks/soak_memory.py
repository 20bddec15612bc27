"""Memory soak at full count: 1,000 requests through one SamRuntime, RSS curve as JSON.

    python benchmarks/soak_memory.py --engine engines/vit_b [--requests 1000] [--out benchmarks/results/<machine id>/soak_<engine>.json]

Target: resident memory grows by less than 50 MB after warm-up. CI runs a reduced count on a
tiny engine (tests/samrt/test_soak.py). Same as ``python -m samexport.soak``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from samexport.soak import main
from samexport.timing import result_path

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--out" not in args:
        engine = Path(args[args.index("--engine") + 1]) if "--engine" in args else Path("engine")
        args += ["--out", str(result_path(f"soak_{engine.name}"))]
    main(args)
