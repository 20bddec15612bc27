"""samexport.int8: weights (and activations) as two int8 terms, and the graph rewrites onnxruntime runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from samrt.errors import InvalidInputError

from samexport.int8 import REMAINDER_RATIO, split_weight, two_term_int8


def _matmul_model(weight: np.ndarray, tokens: int) -> onnx.ModelProto:
    """x [tokens, K] -> (y = x @ W, gram = y @ y^T): one weight MatMul and one activation x
    activation MatMul, which must stay FP32."""
    k, n = weight.shape
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="weight_matmul"),
             helper.make_node("Transpose", ["y"], ["yt"], perm=[1, 0]),
             helper.make_node("MatMul", ["y", "yt"], ["gram"], name="activation_matmul")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [tokens, k])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [tokens, n]),
                               helper.make_tensor_value_info("gram", TensorProto.FLOAT, [tokens, tokens])],
                              [numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def _dynamic_uint8(x: np.ndarray) -> tuple[np.ndarray, float, int]:
    """ONNX DynamicQuantizeLinear, written from its specification: the range always holds 0."""
    low, high = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = (high - low) / 255.0
    zero = int(np.clip(np.rint(-low / scale), 0, 255))
    return np.clip(np.rint(x / scale) + zero, 0, 255).astype(np.int64), scale, zero


def test_split_weight_keeps_about_fifteen_bits_per_column():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.02, (256, 96)).astype(np.float32)
    w[:, 3] = 0.0  # an all-zero column must not divide by zero
    w[:, 7] *= 50.0  # columns of different ranges get their own scales
    q1, s1, q2, s2 = split_weight(w)
    assert q1.dtype == q2.dtype == np.int8 and s1.shape == s2.shape == (96,)
    assert np.abs(q1).max() <= 127 and np.abs(q2).max() <= 127
    np.testing.assert_array_equal(s2, (s1.astype(np.float64) / REMAINDER_RATIO).astype(np.float32))
    rebuilt = q1 * s1.astype(np.float64) + q2 * s2.astype(np.float64)
    one_term = np.abs(q1 * s1.astype(np.float64) - w)
    error = np.abs(rebuilt - w)
    # within half a step of the second term, column by column (the scales are stored as float32)
    assert np.all(error <= s2 * 0.501)
    peak = np.abs(w).max(axis=0)
    assert np.all(error.max(axis=0) <= peak / 127 / 127)  # ~2^-14 of each column's range
    assert error.max() < one_term.max() / 50
    assert not rebuilt[:, 3].any() and s1[3] == 1.0


def test_rewrite_matches_the_int8_arithmetic_and_leaves_activation_products():
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.02, (64, 48)).astype(np.float32)
    x = rng.normal(0, 1, (32, 64)).astype(np.float32)
    model = _matmul_model(w, 32)
    rewritten, count = two_term_int8(model, activation_terms=1)
    assert count == 1
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops.count("DynamicQuantizeMatMul") == 2 and ops.count("MatMul") == 1  # the gram product stayed
    assert "w" not in {i.name for i in rewritten.graph.initializer}  # the FP32 weight is gone
    assert [n.op_type for n in model.graph.node].count("MatMul") == 2  # the input model is untouched
    onnx.checker.check_model(rewritten, full_check=True)

    y, gram = _run(rewritten, x)
    # the same products computed from the operators' definitions
    xq, scale, zero = _dynamic_uint8(x)
    q1, s1, q2, s2 = split_weight(w)
    expected = ((xq - zero) @ q1.astype(np.int64)) * (scale * s1) + ((xq - zero) @ q2.astype(np.int64)) * (scale * s2)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gram, y @ y.T, rtol=1e-4, atol=1e-5)


def test_two_terms_leave_only_the_activation_error():
    """Against FP32: two terms are as close as exact weights with the same uint8 activations,
    and closer than onnxruntime's one-term quantisation."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.02, (384, 256)).astype(np.float32)
    x = rng.normal(0, 1, (512, 384)).astype(np.float32)
    exact = x.astype(np.float64) @ w.astype(np.float64)
    xq, scale, zero = _dynamic_uint8(x)
    activations_only = ((xq - zero) * scale) @ w.astype(np.float64)

    def relative(y):
        return float(np.linalg.norm(y - exact) / np.linalg.norm(exact))

    model = _matmul_model(w, 512)
    two = _run(two_term_int8(model, activation_terms=1)[0], x)[0]
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "f.onnx", Path(tmp) / "q.onnx"
        onnx.save(model, str(source))
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         extra_options={"MatMulConstBOnly": True})
        one = _run(onnx.load(str(target)), x)[0]
    assert relative(two) == pytest.approx(relative(activations_only), rel=0.02)
    assert relative(two) < 0.8 * relative(one)


@pytest.mark.parametrize("k, n", [(48, 64), (96, 40)], ids=["concatenated (K <= N)", "summed (K > N)"])
def test_two_activation_terms_match_the_int8_arithmetic(k, n):
    """x as its uint8 quantisation plus the uint8 quantisation of the remainder, computed from the
    operators' definitions: one product over [x, 254 r] when K <= N, two more outputs when K > N."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.02, (k, n)).astype(np.float32)
    x = rng.normal(0, 1, (32, k)).astype(np.float32)
    x[:, 1] += 6.0  # an asymmetric range: the zero point is not 128
    rewritten, count = two_term_int8(_matmul_model(w, 32))
    onnx.checker.check_model(rewritten, full_check=True)
    ops = [node.op_type for node in rewritten.graph.node]
    assert count == 1 and ops.count("DynamicQuantizeLinear") == 1 and ops.count("DynamicQuantizeMatMul") == 1
    assert ops.count("MatMulIntegerToFloat") == (1 if k <= n else 2) and ops.count("Concat") == (k <= n)
    used = {name for node in rewritten.graph.node for name in node.input}
    assert all(i.name in used for i in rewritten.graph.initializer)  # nothing stored twice or for nothing
    y = _run(rewritten, x)[0]

    q1, s1, q2, s2 = (t.astype(np.float64) for t in split_weight(w))
    xq, scale, zero = _dynamic_uint8(x)
    rest = x - ((xq - zero) * np.float32(scale)).astype(np.float32)  # DequantizeLinear and Sub, in float32
    expected = ((xq - zero) @ q1) * (scale * s1)
    if k <= n:
        joint = np.concatenate([x, rest * np.float32(REMAINDER_RATIO)], axis=1)
        jq, jscale, jzero = _dynamic_uint8(joint)
        expected += ((jq - jzero) @ np.concatenate([q2, q1])) * (jscale * s2)
    else:
        rq, rscale, rzero = _dynamic_uint8(rest)
        expected += ((xq - zero) @ q2) * (scale * s2) + ((rq - rzero) @ q1) * (rscale * s1)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    # and that arithmetic is FP32 to about 16 bits: ~100x closer than uint8 activations alone
    exact = x.astype(np.float64) @ w.astype(np.float64)
    one_term = _run(two_term_int8(_matmul_model(w, 32), activation_terms=1)[0], x)[0]
    assert np.linalg.norm(y - exact) < np.linalg.norm(one_term - exact) / 30


def test_activation_terms_are_checked():
    with pytest.raises(InvalidInputError, match="activation_terms"):
        two_term_int8(_matmul_model(np.ones((4, 4), np.float32), 2), activation_terms=3)
