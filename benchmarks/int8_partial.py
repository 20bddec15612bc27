"""int8 on part of the encoder: which weight MatMuls can stay int8 for the accuracy target?

``samexport build --precision int8 --int8-terms 1`` quantises all 48 weight MatMuls of the ViT-B encoder
(dynamic quantisation: uint8 activations per tensor, int8 weights) and keeps ~79 % of prompts at
mask IoU >= 0.95 against fp32, where issue 5 asks for 95 %. This script quantises subsets (per
layer: the attention's qkv and output projection, the MLP's two MatMuls) with the same
``quantize_dynamic`` and measures, in one run on one machine:
  * the encoder's time against the fp32 encoder (alternating runs, after a warm-up);
  * accuracy with the accuracy report's own comparison (``samexport.report.compare``:
    scikit-image's astronaut, coffee, chelsea; 8 prompts of each of 5 kinds per image) against
    the fp32 onnxruntime engine, which matches the PyTorch reference to ~1e-5 (export
    verification) and makes a run of all subsets affordable.

    python benchmarks/int8_partial.py --engine engines/vit_b [--out benchmarks/results/<machine id>/int8_partial_vit_b.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from samexport.timing import measure, result_path, write_record

ROLES = ("qkv", "proj", "lin1", "lin2")  # the order of a ViT layer's weight MatMuls in the graph
SUBSETS: dict[str, Callable[[int, str], bool]] = {
    "all (what the build writes)": lambda layer, role: True,
    "MLP only (lin1, lin2)": lambda layer, role: role in ("lin1", "lin2"),
    "LayerNorm inputs only (qkv, lin1)": lambda layer, role: role in ("qkv", "lin1"),
    "all but the MLP's second MatMul (GELU input)": lambda layer, role: role != "lin2",
    "layers 0-7 only": lambda layer, role: layer < 8,
    "all but the attention's qkv": lambda layer, role: role != "qkv",
    "the attention's qkv only": lambda layer, role: role == "qkv",
    "the attention's output projection only": lambda layer, role: role == "proj",
}


def weight_matmuls(path: Path) -> dict[str, tuple[int, str]]:
    """Encoder MatMul nodes with an initializer operand -> (layer, role), in graph order."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    names = [n.name for n in model.graph.node if n.op_type == "MatMul" and any(i in initializers for i in n.input)]
    if len(names) % len(ROLES):
        raise SystemExit(f"{len(names)} weight MatMuls in {path}: expected {len(ROLES)} per ViT layer")
    return {name: (i // len(ROLES), ROLES[i % len(ROLES)]) for i, name in enumerate(names)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", type=Path, required=True, help="fp32 engine directory (samexport export)")
    parser.add_argument("--prompts-per-kind", type=int, default=8)
    parser.add_argument("--runs", type=int, default=2, help="timed encoder runs per side")
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/int8_partial_vit_b.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("int8_partial_vit_b")

    from onnxruntime.quantization import QuantType, quantize_dynamic
    from samrt import SamRuntime
    from samrt.backends.onnxruntime import OnnxRuntimeRunner

    from samexport.report import sample_images
    from samexport.report.compare import CompareSettings, compare_backend

    logging.getLogger().setLevel(logging.ERROR)  # the quantiser logs advice per call
    source = args.engine / "encoder.onnx"
    roles = weight_matmuls(source)
    reference = SamRuntime.load(args.engine, backend="onnxruntime")
    images = sample_images()
    pixels = {"pixel_values": np.random.default_rng(0).normal(size=(1, 3, 1024, 1024)).astype(np.float32)}
    reference.encoder.infer(pixels)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, keep in SUBSETS.items():
            quantised = Path(tmp) / "encoder_int8.onnx"
            excluded = [node for node, (layer, role) in roles.items() if not keep(layer, role)]
            quantize_dynamic(str(source), str(quantised), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                             nodes_to_exclude=excluded)
            candidate = SamRuntime.load(args.engine, backend="onnxruntime")
            candidate.encoder.close()
            candidate.encoder = OnnxRuntimeRunner(quantised)
            candidate.encoder.infer(pixels)
            seconds: dict[str, list[float]] = {"int8": [], "fp32": []}
            for _ in range(args.runs):
                for side, runtime in (("int8", candidate), ("fp32", reference)):
                    run = measure(lambda r=runtime: r.encoder.infer(pixels), repeat=1, warmup=0)
                    seconds[side].append(run.p50_ms / 1e3)
            result = compare_backend(reference, candidate, images,
                                     settings=CompareSettings(prompts_per_kind=args.prompts_per_kind))
            ious = np.array([r["mask_iou"] for r in result["prompts"]])
            row = {
                "subset": name,
                "quantised_matmuls": len(roles) - len(excluded),
                "of": len(roles),
                "encoder_time_vs_fp32": round(sum(seconds["int8"]) / sum(seconds["fp32"]), 3),
                "encoder_s": {side: [round(s, 2) for s in values] for side, values in seconds.items()},
                "prompts": int(ious.size),
                "share_mask_iou_at_least_0.95": round(float((ious >= 0.95).mean()), 3),
                "mask_iou_p5": round(float(np.percentile(ious, 5)), 4),
                "mask_iou_mean": round(float(ious.mean()), 4),
                "embeddings_cosine_min": round(min(e["cosine"] for e in result["embeddings"]), 6),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            candidate.close()
    record = {
        "benchmark": "int8_partial_encoder",
        "engine": str(args.engine),
        "reference": "the fp32 onnxruntime engine (PyTorch reference within ~1e-5)",
        "targets": {"encoder_time_vs_fp32": "<= 0.5", "share_mask_iou_at_least_0.95": ">= 0.95"},
        "results": rows,
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
