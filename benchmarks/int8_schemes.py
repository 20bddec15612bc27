"""Which int8 scheme for the encoder's weight MatMuls? One ViT-B MatMul per shape, every scheme side
by side in rounds, on onnxruntime's CPU provider: latency and the relative error of the product.

The shapes are the ViT-B encoder's (4096 tokens of a 64 x 64 grid): the MLP's two MatMuls
(768 -> 3072 on LayerNorm output, 3072 -> 768 on GELU output) and the attention's qkv
(768 -> 2304). Weights N(0, 0.02) as in our random checkpoints; activations drawn like the
encoder's (standard normal after a LayerNorm, GELU of one for the second MLP MatMul).

Schemes:
- ``fp32``: the plain MatMul (the baseline of both figures).
- ``dynamic``, ``dynamic_per_channel``: ``quantize_dynamic`` (what ``samexport build --precision
  int8`` writes): uint8 activations quantised per tensor at run time, int8 weights per tensor or
  per output channel, ``MatMulInteger``.
- ``nbits8_b32``, ``nbits8_b128``, ``nbits4_b32``, ``nbits4_b128``: ``MatMulNBitsQuantizer``
  (weights in blocks of 32 / 128 along K, symmetric) with ``accuracy_level=4``, i.e. int8
  activations quantised per block as well: finer quantisation, other kernels.

    python benchmarks/int8_schemes.py [--rounds 5] [--out benchmarks/results/<machine id>/int8_schemes.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
from encoder_ceiling import cpu_session, matmul_model  # sibling script: its folder is on sys.path

from samexport.timing import describe_machine, measure, result_path

TOKENS = 4096
SHAPES = {"mlp_lin1": (768, 3072, "layernorm"), "mlp_lin2": (3072, 768, "gelu"), "attn_qkv": (768, 2304, "layernorm")}


def write_schemes(weight: np.ndarray, directory: Path) -> dict[str, Path]:
    """Every scheme's ONNX for one weight, written into ``directory``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    logging.getLogger().setLevel(logging.ERROR)  # the quantisers log advice at import and per call
    paths = {"fp32": directory / "fp32.onnx"}
    onnx.save(matmul_model(weight, TOKENS), str(paths["fp32"]))
    for name, per_channel in (("dynamic", False), ("dynamic_per_channel", True)):
        paths[name] = directory / f"{name}.onnx"
        quantize_dynamic(str(paths["fp32"]), str(paths[name]), weight_type=QuantType.QInt8, per_channel=per_channel)
    for bits in (8, 4):
        for block in (32, 128):
            name = f"nbits{bits}_b{block}"
            quantizer = MatMulNBitsQuantizer(onnx.load(str(paths["fp32"])), bits=bits, block_size=block,
                                             is_symmetric=True, accuracy_level=4)
            quantizer.process()
            paths[name] = directory / f"{name}.onnx"
            quantizer.model.save_model_to_file(str(paths[name]))
    return paths


def _activations(rng: np.random.Generator, k: int, kind: str) -> np.ndarray:
    x = rng.normal(size=(TOKENS, k)).astype(np.float32)
    if kind == "gelu":  # tanh form of GELU: the same distribution of values for this purpose
        x = (0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))).astype(np.float32)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None,
                        help="[default: benchmarks/results/<machine id>/int8_schemes.json]")
    args = parser.parse_args()
    args.out = args.out or result_path("int8_schemes")
    rng = np.random.default_rng(0)
    rows = []
    for shape_name, (k, n, kind) in SHAPES.items():
        weight = (rng.normal(size=(k, n)) * 0.02).astype(np.float32)
        x = _activations(rng, k, kind)
        exact = x.astype(np.float64) @ weight.astype(np.float64)
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_schemes(weight, Path(tmp))
            sessions = {name: cpu_session(str(path), args.threads) for name, path in paths.items()}
            errors = {}
            for name, session in sessions.items():
                y = session.run(None, {"A": x})[0].astype(np.float64)
                errors[name] = float(np.linalg.norm(y - exact) / np.linalg.norm(exact))
            rounds = [{name: measure(lambda s=session: s.run(None, {"A": x}), repeat=args.repeat).p50_ms
                       for name, session in sessions.items()} for _ in range(args.rounds)]
        row = {
            "matmul": shape_name, "tokens": TOKENS, "k": k, "n": n, "activations": kind,
            "p50_ms": {name: round(float(np.median([r[name] for r in rounds])), 2) for name in sessions},
            "time_vs_fp32": {name: round(float(np.median([r[name] / r["fp32"] for r in rounds])), 3)
                             for name in sessions},
            "relative_error": {name: round(err, 5) for name, err in errors.items()},
        }
        rows.append(row)
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "int8_schemes", "machine": describe_machine(),
                                    "threads": args.threads, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
