"""The int8 builds' encoder times side by side: fp32 and each int8 scheme of ``samexport build``
(``--int8-terms 1``; ``--int8-terms 2 --int8-activation-terms 1``; the default, two weight and two
activation terms), onnxruntime CPU, one image, in alternating rounds in one run so that every
scheme sees the same machine state. Accuracy is not measured here: ``bench_int8.py`` records it
per scheme against the PyTorch reference.

    python benchmarks/int8_builds.py --engine engines/vit_b [--rounds 3] [--out benchmarks/results/<machine id>/int8_builds_vit_b.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from samexport.bench import synthetic_image
from samexport.build import BuildSettings, build_engine, default_output
from samexport.timing import result_path, write_record

SCHEMES = {  # name -> (int8_terms, int8_activation_terms)
    "one term (--int8-terms 1)": (1, None),
    "two weight terms, uint8 activations (--int8-activation-terms 1)": (2, 1),
    "two weight terms, two activation terms (the default)": (2, 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", type=Path, required=True, help="fp32 engine directory (samexport export)")
    parser.add_argument("--rounds", type=int, default=3, help="timed runs of each encoder, alternating")
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/int8_builds_vit_b.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("int8_builds_vit_b")
    from samrt import SamRuntime

    runtimes = {"fp32": SamRuntime.load(args.engine, backend="onnxruntime")}
    builds = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (terms, activations) in SCHEMES.items():
            settings = BuildSettings(precision="int8", int8_terms=terms, int8_activation_terms=activations,
                                     check_prompts=0)
            out = Path(tmp) / default_output(args.engine, settings).name
            build_engine(args.engine, settings=settings, out_dir=out)
            builds[name] = {"int8_terms": terms, "int8_activation_terms": settings.activation_terms,
                            "directory_suffix": out.name[len(args.engine.name):]}
            runtimes[name] = SamRuntime.load(out, backend="onnxruntime")
        pixels = runtimes["fp32"].processor.preprocess_image(synthetic_image(1500, 2250))[0][None]
        times: dict[str, list[float]] = {name: [] for name in runtimes}
        for runtime in runtimes.values():  # warm-up: the first runs page-fault the arenas
            runtime.encoder.infer({"pixel_values": pixels})
        for _ in range(args.rounds):
            for name, runtime in runtimes.items():
                start = time.perf_counter()
                runtime.encoder.infer({"pixel_values": pixels})
                times[name].append(time.perf_counter() - start)
        for runtime in runtimes.values():
            runtime.close()
    p50 = {name: float(np.median(t)) * 1000 for name, t in times.items()}
    rows = [{"scheme": name, **builds.get(name, {}), "encoder_p50_ms": round(ms, 1),
             "encoder_ms_each_round": [round(t * 1000, 1) for t in times[name]],
             "vs_fp32": round(ms / p50["fp32"], 3)} for name, ms in p50.items()]
    for row in rows:
        print(row)
    write_record(args.out, {"benchmark": "int8_builds", "engine": str(args.engine), "rounds": args.rounds,
                            "results": rows})


if __name__ == "__main__":
    main()
