"""How close the fp32 encoder on onnxruntime-CPU is to what this machine can do at all.

Measured in one run, same machine:
  * the machine's fp32 GEMM ceiling: onnxruntime's own MatMul on the ViT-B MLP shape
    ([4096, 768] x [768, 3072]), GFLOP/s;
  * our exported encoder (``--engine``'s encoder.onnx) on onnxruntime-CPU;
  * segment_anything's image encoder exported naively (``torch.onnx.export``, TorchScript
    exporter, opset 17, no graph changes) on the same onnxruntime settings, same seeded input.
The encoder's arithmetic is counted from its config (linear layers, attention products, patch
embedding and neck); the report gives each encoder's achieved GFLOP/s and the time it would take at
the GEMM ceiling. Random weights: speed does not depend on them.

    python benchmarks/encoder_ceiling.py --engine engines/vit_b [--runs 3] [--out benchmarks/results/<machine id>/encoder_ceiling_vit_b.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from samexport.timing import describe_machine, result_path


def encoder_gflop(*, hidden: int, mlp: int, layers: int, heads: int, window: int, global_layers: int,
                  grid: int = 64, patch: int = 16, out_channels: int = 256) -> float:
    """Multiply-adds x 2 of one ViT encoder pass at a grid x grid token map, in GFLOP.

    Windowed layers run their qkv/proj on the zero-padded windows (as SAM does), so they count
    the padded token count."""
    tokens = grid * grid
    padded = (-(-grid // window) * window) ** 2
    head_dim = hidden // heads
    total = 2 * tokens * (3 * patch * patch) * hidden  # patch embedding
    for index in range(layers):
        is_global = index < global_layers
        attn_tokens = tokens if is_global else padded
        total += 2 * attn_tokens * hidden * 4 * hidden  # qkv + proj
        total += 2 * 2 * tokens * hidden * mlp  # MLP
        if is_global:
            total += 2 * 2 * heads * tokens * tokens * head_dim  # q.k and attn.v
        else:
            windows = padded // (window * window)
            total += 2 * 2 * heads * windows * (window * window) ** 2 * head_dim
    total += 2 * tokens * hidden * out_channels + 2 * tokens * out_channels * out_channels * 9  # neck
    return total / 1e9


def cpu_session(model: str | bytes, threads: int):
    """An onnxruntime CPU session of a graph file path or serialised graph."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def _time(session, feed: dict, runs: int) -> list[float]:
    session.run(None, feed)  # first run allocates
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return times


def matmul_model(weight: np.ndarray, rows: int):
    """An ONNX graph of one MatMul: ``A`` float32 [rows, K] times the constant ``weight`` [K, N]
    -> ``C`` [rows, N] (the shape of one ViT-B weight MatMul with rows = 4096 tokens)."""
    from onnx import TensorProto, helper, numpy_helper

    k, n = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["C"])], "gemm",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [rows, k])],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT, [rows, n])],
        [numpy_helper.from_array(weight, "B")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def gemm_ceiling(threads: int, runs: int = 10) -> float:
    rng = np.random.default_rng(0)
    model = matmul_model(rng.random((768, 3072), dtype=np.float32), 4096)
    session = cpu_session(model.SerializeToString(), threads)
    times = _time(session, {"A": rng.random((4096, 768), dtype=np.float32)}, runs)
    return 2 * 4096 * 768 * 3072 / float(np.median(times)) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", type=Path, required=True, help="engine directory of random:vit_b")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/encoder_ceiling_vit_b.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("encoder_ceiling_vit_b")
    import torch
    from segment_anything import sam_model_registry

    ceiling = gemm_ceiling(args.threads)
    gflop = encoder_gflop(hidden=768, mlp=3072, layers=12, heads=12, window=14, global_layers=4)
    pixels = np.random.default_rng(0).normal(size=(1, 3, 1024, 1024)).astype(np.float32)
    ours = cpu_session(str(args.engine / "encoder.onnx"), args.threads)
    ours_times = _time(ours, {ours.get_inputs()[0].name: pixels}, args.runs)
    del ours
    torch.manual_seed(0)
    meta_encoder = sam_model_registry["vit_b"]().image_encoder.eval()
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        path = str(Path(tmp) / "sa_encoder.onnx")
        torch.onnx.export(meta_encoder, (torch.from_numpy(pixels),), path, opset_version=17, dynamo=False)
        naive = cpu_session(path, args.threads)
        naive_times = _time(naive, {naive.get_inputs()[0].name: pixels}, args.runs)
    rows = {}
    for name, times in (("samexport_encoder", ours_times), ("segment_anything_naive_export", naive_times)):
        p50 = float(np.median(times))
        rows[name] = {"runs_s": [round(t, 3) for t in times], "p50_s": round(p50, 3),
                      "achieved_gflop_per_s": round(gflop / p50, 1)}
    result = {
        "benchmark": "encoder_ceiling", "machine": describe_machine(), "threads": args.threads,
        "encoder_gflop": round(gflop, 1),
        "gemm_ceiling_gflop_per_s": round(ceiling, 1),
        "encoder_time_at_gemm_ceiling_s": round(gflop / ceiling, 2),
        **rows,
        "samexport_vs_naive_time_ratio": round(rows["samexport_encoder"]["p50_s"]
                                               / rows["segment_anything_naive_export"]["p50_s"], 3),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2))


if __name__ == "__main__":
    main()
