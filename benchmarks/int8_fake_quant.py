"""Which int8 rounding moves the masks: the activations' or the weights'?

The ViT-B encoder's 48 weight MatMuls are rewritten with *fake* quantisation (FP32 ops that round
like int8: ``DynamicQuantizeLinear`` → ``DequantizeLinear`` for onnxruntime's per-tensor uint8
activations, Round/Mul for per-token int8 activations, weights rounded offline), one granularity
at a time, and scored with the accuracy report's comparison (3 photographs × 5 kinds × 8
prompts) against the FP32 onnxruntime engine. ``tensor_asym:tensor`` is what onnxruntime's
``quantize_dynamic`` computes (check: it must give the real int8 build's figures).

Activation modes: ``fp32``, ``tensor_asym`` (uint8, one range per tensor and call), ``token_sym``
(int8, one scale per token). Weight modes: ``fp32``, ``tensor`` (int8, one scale), ``channel``
(int8, a scale per output channel), ``channel2`` (two int8 terms per output channel,
:func:`samexport.int8.split_weight`).

    python benchmarks/int8_fake_quant.py --engine engines/vit_b [--out benchmarks/results/int8_fake_quant_vit_b_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from int8_partial import weight_matmuls  # sibling script: its folder is on sys.path

from samexport.int8 import split_weight
from samexport.timing import write_record

VARIANTS = ("tensor_asym:tensor", "fp32:tensor", "fp32:channel", "token_sym:channel", "token_sym:fp32",
            "tensor_asym:fp32", "tensor_asym:channel2")


def rounded_weight(w: np.ndarray, mode: str) -> np.ndarray:
    """``w`` [K, N] as the weight mode stores it, back in float32."""
    if mode == "fp32":
        return w
    if mode == "channel2":
        q1, s1, q2, s2 = split_weight(w)
        return (q1 * s1.astype(np.float64) + q2 * s2.astype(np.float64)).astype(np.float32)
    scale = np.abs(w).max(axis=0 if mode == "channel" else None, keepdims=mode == "channel") / 127
    return (np.rint(w / scale) * scale).astype(np.float32)


def activation_nodes(x: str, out: str, mode: str, prefix: str) -> list:
    """Nodes that turn activation ``x`` into its fake-quantised copy ``out``."""
    from onnx import helper

    if mode == "fp32":
        return [helper.make_node("Identity", [x], [out])]
    if mode == "tensor_asym":
        return [helper.make_node("DynamicQuantizeLinear", [x], [prefix + "q", prefix + "s", prefix + "z"]),
                helper.make_node("DequantizeLinear", [prefix + "q", prefix + "s", prefix + "z"], [out])]
    if mode == "token_sym":
        return [helper.make_node("Abs", [x], [prefix + "abs"]),
                helper.make_node("ReduceMax", [prefix + "abs", "fq_axes"], [prefix + "peak"], keepdims=1),
                helper.make_node("Div", [prefix + "peak", "fq_127"], [prefix + "s"]),
                helper.make_node("Max", [prefix + "s", "fq_tiny"], [prefix + "scale"]),
                helper.make_node("Div", [x, prefix + "scale"], [prefix + "d"]),
                helper.make_node("Round", [prefix + "d"], [prefix + "r"]),
                helper.make_node("Mul", [prefix + "r", prefix + "scale"], [out])]
    raise SystemExit(f"unknown activation mode {mode!r}")


def fake_quantised(source: Path, target: Path, activations: str, weights: str) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    initializers = {i.name: i for i in model.graph.initializer}
    roles = weight_matmuls(source)
    model.graph.initializer.extend([numpy_helper.from_array(np.array([-1], np.int64), "fq_axes"),
                                    numpy_helper.from_array(np.array(127, np.float32), "fq_127"),
                                    numpy_helper.from_array(np.array(1e-12, np.float32), "fq_tiny")])
    nodes = []
    for node in model.graph.node:
        if node.name in roles:
            w_name = next(i for i in node.input if i in initializers)
            x_name = next(i for i in node.input if i not in initializers)
            weight = numpy_helper.to_array(initializers[w_name])
            initializers[w_name].CopyFrom(numpy_helper.from_array(rounded_weight(weight, weights), w_name))
            prefix = f"{node.name}_fq_"
            nodes += activation_nodes(x_name, prefix + "x", activations, prefix)
            node.input[list(node.input).index(x_name)] = prefix + "x"
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.save(model, str(target))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", type=Path, required=True, help="fp32 engine directory (samexport export)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="ACTIVATIONS:WEIGHTS pairs")
    parser.add_argument("--prompts-per-kind", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/int8_fake_quant_vit_b_cpu.json"))
    args = parser.parse_args()
    from samrt import SamRuntime
    from samrt.backends.onnxruntime import OnnxRuntimeRunner

    from samexport.report import sample_images
    from samexport.report.compare import CompareSettings, compare_backend

    reference = SamRuntime.load(args.engine, backend="onnxruntime")
    images = sample_images()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            activations, weights = variant.split(":")
            path = Path(tmp) / "encoder_fake_int8.onnx"
            fake_quantised(args.engine / "encoder.onnx", path, activations, weights)
            candidate = SamRuntime.load(args.engine, backend="onnxruntime")
            candidate.encoder.close()
            candidate.encoder = OnnxRuntimeRunner(path)
            result = compare_backend(reference, candidate, images,
                                     settings=CompareSettings(prompts_per_kind=args.prompts_per_kind))
            ious = np.array([r["mask_iou"] for r in result["prompts"]])
            row = {"activations": activations, "weights": weights, "prompts": int(ious.size),
                   "share_mask_iou_at_least_0.95": round(float((ious >= 0.95).mean()), 3),
                   "mask_iou_p5": round(float(np.percentile(ious, 5)), 4),
                   "mask_iou_mean": round(float(ious.mean()), 4),
                   "embeddings_cosine_min": round(min(e["cosine"] for e in result["embeddings"]), 6)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            candidate.close()
    write_record(args.out, {"benchmark": "int8_fake_quant", "engine": str(args.engine),
                            "reference": "the fp32 onnxruntime engine", "results": rows})


if __name__ == "__main__":
    main()
