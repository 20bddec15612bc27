"""Where the fp32 (or int8) encoder's time goes on onnxruntime-CPU, by op and by role.

onnxruntime's own profiler over one steady-state encoder run (after warm-up runs: the first
runs page-fault the arena's large blocks and are not representative), on samrt's CPU session
settings. Each node's kernel time is put in one group:
  * ``weight_matmul``: a MatMul (or its quantised form) with a weight initializer operand, i.e.
    the 48 ViT-B projections (qkv, proj, lin1, lin2) plus the neck's;
  * ``attention_products``: MatMuls between two activations (q·kᵀ, attention·v);
  * ``elementwise_and_other``: everything else (adds of the relative-position terms, softmax,
    GELU, LayerNorm, transposes, pads, the patch and neck convolutions).

The figure that matters for int8: ``bound_if_weight_matmuls_free`` = the share of the run that
is not a weight MatMul, i.e. the encoder's time relative to this run if every weight MatMul took
no time at all. Quantising only the weight MatMuls cannot go below it.

    python benchmarks/encoder_profile.py --encoder engines/vit_b/encoder.onnx [--out benchmarks/results/<machine id>/encoder_profile_vit_b.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path

import numpy as np

from samexport.timing import result_path, write_record

WEIGHT_OPS = {"MatMul", "MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "FusedMatMul",
              "MatMulNBits", "Gemm"}


def weight_nodes(path: Path) -> set[str]:
    """Names of the graph's matrix-product nodes that read an initializer (a weight)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return {n.name for n in model.graph.node if n.op_type in WEIGHT_OPS and any(i in initializers for i in n.input)}


def group_of(op: str, node: str, weights: set[str]) -> str:
    """The group of one profiled node. Fused nodes keep the name of the node they grew from as
    the first part of their name (``node_matmul_4/MatmulTransposeFusion/...``)."""
    if op in WEIGHT_OPS or op == "DynamicQuantizeLinear":
        base = node.split("/")[0]
        if base in weights or op in ("DynamicQuantizeMatMul", "DynamicQuantizeLinear", "MatMulInteger"):
            return "weight_matmul"
        return "attention_products"
    return "elementwise_and_other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", type=Path, required=True, help="an encoder.onnx (fp32 or int8)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/encoder_profile_vit_b.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("encoder_profile_vit_b")
    import onnxruntime as ort

    weights = weight_nodes(args.encoder)
    options = ort.SessionOptions()  # samrt's CPU encoder settings (samrt.backends.onnxruntime)
    options.enable_mem_pattern = False
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "encoder")
    session = ort.InferenceSession(str(args.encoder), options, providers=["CPUExecutionProvider"])
    pixels = {"pixel_values": np.random.default_rng(0).normal(size=(1, 3, 1024, 1024)).astype(np.float32)}
    for _ in range(args.warmup + 1):
        session.run(None, pixels)
    events = json.loads(Path(session.end_profiling()).read_text())
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    last_run = kernels[len(kernels) * args.warmup // (args.warmup + 1):]
    by_op: collections.Counter[str] = collections.Counter()
    by_group: collections.Counter[str] = collections.Counter()
    for event in last_run:
        op, node = event["args"]["op_name"], event["name"].removesuffix("_kernel_time")
        by_op[op] += event["dur"]
        by_group[group_of(op, node, weights)] += event["dur"]
    total = sum(by_op.values())
    record = {
        "benchmark": "encoder_profile",
        "encoder": str(args.encoder),
        "weight_matmul_nodes": len(weights),
        "kernel_ms_total": round(total / 1e3, 1),
        "share_by_group": {g: round(v / total, 3) for g, v in by_group.most_common()},
        "share_by_op": {op: round(v / total, 3) for op, v in by_op.most_common(12)},
        "bound_if_weight_matmuls_free": round(1 - by_group["weight_matmul"] / total, 3),
    }
    write_record(args.out, record)


if __name__ == "__main__":
    main()
