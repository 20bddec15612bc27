"""int8 in two terms: the encoder's weight MatMuls as dynamically quantised int8 products that keep
about 15 bits of each weight and, by default, of each activation.

Why two weight terms: with one int8 term per weight (``quantize_dynamic``, per tensor or per
output channel) the ViT-B masks of random-weight models keep only 79-83 % of prompts at IoU >= 0.95
against FP32. Measured with fake-quantised graphs (docs/precision.md): the weights' rounding is
what moves them (FP32 activations with per-channel int8 weights: 82.5 %). Its error is a fixed
linear map applied to every token, so it is structured, and structured errors move the masks of
random weights. So each weight W [K, N] is split per output channel into an int8 term and an int8
remainder on a 254 times finer grid:

    W ~ s1 * (q1 + q2 / 254),  q1 = round(W / s1),  q2 = round(254 (W - s1 q1) / s1),
    s1 = max|W[:, n]| / 127

(|W - s1 q1| <= s1 / 2, so q2 fits int8; the error is at most s1 / 508, ~2^-15 of the column's range).

Why two activation terms: on the stress weights (:mod:`samexport.checkpoints.stress`) the activations' uint8
rounding, one range per tensor and call, costs too (76.7 % of prompts with two weight terms, 100 %
with FP32 activations). So the activation x is also kept as its uint8 quantisation xq (scale
xs) plus the remainder r = x - xs (xq - zero), which lies within +-xs / 2 and is quantised again:

    x @ W ~ s1 xq @ q1  +  s1 / 254 (xq @ q2 + 254 r @ q1)      (r @ q2 / 254 is dropped)

onnxruntime runs it as ``DynamicQuantizeLinear`` → ``MatMulIntegerToFloat`` for the first product.
The two finer products share the scale s1 / 254. When K <= N they run as one
``DynamicQuantizeMatMul`` over [x, 254 r] concatenated along K (254 r spans about the same range as x, so one
uint8 range serves both). When K > N, copying the wide activation costs more than a third
output, so they run as two products added to the first. With ``activation_terms=1`` only the
weight is split: two ``DynamicQuantizeMatMul`` over x. The int8 arithmetic is 1.5x (or 1x) that
of two plain products: fast on CPUs with VNNI or AMX int8 kernels, slower than FP32 on CPUs
without them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from samrt.checks import check_int

__all__ = ["REMAINDER_RATIO", "check_term_count", "split_weight", "two_term_int8"]

_QMAX = 127
REMAINDER_RATIO = 254  # the second term's grid is this much finer than the first's
_MS = "com.microsoft"


def check_term_count(argument: str, value: object) -> None:
    """Raise InvalidInputError naming ``argument`` unless ``value`` is the integer 1 or 2 (a count
    of int8 terms; bools are refused although ``True == 1``)."""
    check_int(argument, value, low=1, high=2)


def split_weight(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """float W [K, N] -> (q1 int8 [K, N], s1 float32 [N], q2 int8 [K, N], s2 float32 [N]) with
    W ~ q1 * s1 + q2 * s2 and s2 == s1 / REMAINDER_RATIO (columns of zeros get s1 = 1 and zero terms)."""
    w = np.asarray(weight, dtype=np.float64)
    peak = np.abs(w).max(axis=0)
    s1 = np.where(peak > 0, peak / _QMAX, 1.0).astype(np.float32).astype(np.float64)
    q1 = np.clip(np.rint(w / s1), -_QMAX, _QMAX)
    s2 = s1 / REMAINDER_RATIO
    q2 = np.clip(np.rint((w - q1 * s1) / s2), -_QMAX, _QMAX)
    return q1.astype(np.int8), s1.astype(np.float32), q2.astype(np.int8), s2.astype(np.float32)


def two_term_int8(model: Any, *, activation_terms: int = 2) -> tuple[Any, int]:
    """Rewrite every MatMul of ``model`` (an onnx ModelProto) whose second input is a 2-D float
    initializer into int8 products with two weight terms and ``activation_terms`` (1 or 2)
    activation terms (see the module docstring). Returns (new model, how many MatMuls were
    rewritten); the input model is not changed."""
    import onnx
    from onnx import helper, numpy_helper

    check_term_count("activation_terms", activation_terms)
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    nodes, rewritten, dropped, concatenated = [], 0, set(), 0
    ratio = "int8x2_remainder_ratio"
    for node in graph.node:
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if weight is None or len(weight.dims) != 2 or weight.data_type != onnx.TensorProto.FLOAT:
            nodes.append(node)
            continue
        base = f"{node.name or node.output[0]}_int8x2"
        x, y = node.input[0], node.output[0]
        q1, s1, q2, s2 = split_weight(numpy_helper.to_array(weight))
        concatenate = activation_terms == 2 and q1.shape[0] <= q1.shape[1]
        graph.initializer.extend([numpy_helper.from_array(q1, f"{base}_q1"), numpy_helper.from_array(s1, f"{base}_s1"),
                                  numpy_helper.from_array(s2, f"{base}_s2")])
        if not concatenate:  # the concatenated form stores q2 only inside [q2; q1]
            graph.initializer.append(numpy_helper.from_array(q2, f"{base}_q2"))
        if activation_terms == 1:
            nodes += [
                helper.make_node("DynamicQuantizeMatMul", [x, f"{base}_q1", f"{base}_s1"], [f"{base}_y1"],
                                 name=f"{base}_term1", domain=_MS),
                helper.make_node("DynamicQuantizeMatMul", [x, f"{base}_q2", f"{base}_s2"], [f"{base}_y2"],
                                 name=f"{base}_term2", domain=_MS),
                helper.make_node("Add", [f"{base}_y1", f"{base}_y2"], [y], name=f"{base}_sum"),
            ]
        else:
            nodes += _two_activation_terms(graph, base, x, y, q1, q2, concatenate=concatenate, ratio=ratio)
            concatenated += concatenate
        readers[weight.name] -= 1
        if readers[weight.name] == 0:
            dropped.add(weight.name)
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [i for i in graph.initializer if i.name not in dropped]
    if concatenated:  # the scale of the remainders the concatenated products read
        kept.append(numpy_helper.from_array(np.array(REMAINDER_RATIO, np.float32), ratio))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    if rewritten and not any(o.domain == _MS for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS, 1))
    return model, rewritten


def _two_activation_terms(graph: Any, base: str, x: str, y: str, q1: np.ndarray, q2: np.ndarray, *,
                          concatenate: bool, ratio: str) -> list:
    """Nodes computing y ~ x @ W from x's uint8 quantisation and its remainder (module docstring).
    ``{base}_q1`` / ``{base}_s1`` / ``{base}_s2`` (= s1 / REMAINDER_RATIO) and, unless
    ``concatenate``, ``{base}_q2`` are already initializers of ``graph``; the concatenated weight
    [q2; q1] is added here, and the caller adds ``ratio`` (REMAINDER_RATIO) once."""
    from onnx import helper, numpy_helper

    xq, xs, xz, rest = f"{base}_xq", f"{base}_xs", f"{base}_xz", f"{base}_rest"
    nodes = [
        helper.make_node("DynamicQuantizeLinear", [x], [xq, xs, xz], name=f"{base}_quantize"),
        helper.make_node("MatMulIntegerToFloat", [xq, f"{base}_q1", xs, f"{base}_s1", xz], [f"{base}_y1"],
                         name=f"{base}_term1", domain=_MS),
        helper.make_node("DequantizeLinear", [xq, xs, xz], [f"{base}_xd"], name=f"{base}_dequantize"),
        helper.make_node("Sub", [x, f"{base}_xd"], [rest], name=f"{base}_remainder"),
    ]
    if concatenate:
        graph.initializer.append(numpy_helper.from_array(np.concatenate([q2, q1], axis=0), f"{base}_q21"))
        return nodes + [
            helper.make_node("Mul", [rest, ratio], [f"{base}_rest_scaled"], name=f"{base}_scale_remainder"),
            helper.make_node("Concat", [x, f"{base}_rest_scaled"], [f"{base}_xr"], name=f"{base}_concat", axis=-1),
            helper.make_node("DynamicQuantizeMatMul", [f"{base}_xr", f"{base}_q21", f"{base}_s2"], [f"{base}_y2"],
                             name=f"{base}_fine_terms", domain=_MS),
            helper.make_node("Add", [f"{base}_y1", f"{base}_y2"], [y], name=f"{base}_sum"),
        ]
    return nodes + [
        helper.make_node("MatMulIntegerToFloat", [xq, f"{base}_q2", xs, f"{base}_s2", xz], [f"{base}_y2"],
                         name=f"{base}_term2", domain=_MS),
        helper.make_node("DynamicQuantizeMatMul", [rest, f"{base}_q1", f"{base}_s1"], [f"{base}_y3"],
                         name=f"{base}_remainder_term", domain=_MS),
        helper.make_node("Add", [f"{base}_y1", f"{base}_y2"], [f"{base}_y12"], name=f"{base}_sum12"),
        helper.make_node("Add", [f"{base}_y12", f"{base}_y3"], [y], name=f"{base}_sum"),
    ]
