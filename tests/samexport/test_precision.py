"""FP16 precision policy, the mixed FP16 graphs and the CPU emulation of FP16 numerics.

The emulation is checked against an independent NumPy computation of the same graph with explicit
FP16 rounding (numpy's float16 is IEEE half precision, like TensorRT's), and against the failure
it exists to reproduce: a LayerNorm whose squared deviations pass 65504.
"""

from __future__ import annotations

import collections

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from samrt.errors import InvalidInputError

from samexport.precision import (
    DEFAULT_POLICY,
    POLICIES,
    emulate_fp16,
    fp32_islands,
    policy_named,
    to_mixed_fp16,
)

EPS = 1e-6


def _tiny_graph(weight: np.ndarray, scale: np.ndarray, shift: np.ndarray, bias: np.ndarray) -> onnx.ModelProto:
    """x [2, 8] -> MatMul(W) -> LayerNormalization -> Add(bias) -> Softmax -> y [2, 8]."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
        helper.make_node("LayerNormalization", ["h", "scale", "shift"], ["n"], name="norm", axis=-1, epsilon=EPS),
        helper.make_node("Add", ["n", "bias"], ["a"], name="add"),
        helper.make_node("Softmax", ["a"], ["y"], name="softmax", axis=-1),
    ]
    inits = [numpy_helper.from_array(v.astype(np.float32), k)
             for k, v in {"W": weight, "scale": scale, "shift": shift, "bias": bias}.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9
    return model


def _run(model, x, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL):
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _half(a):
    return np.asarray(a, np.float32).astype(np.float16).astype(np.float32)


def _softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _layer_norm(h, scale, shift, rounding):
    r = rounding
    mean = r(h.mean(-1, keepdims=True))
    centred = r(h - mean)
    var = r(r(centred * centred).mean(-1, keepdims=True))
    std = r(np.sqrt(r(var + np.float32(EPS))))
    return r(r(r(centred / std) * r(scale)) + r(shift))


@pytest.fixture
def weights():
    rng = np.random.default_rng(0)
    return (rng.normal(0, 0.5, (8, 8)), rng.normal(1, 0.1, 8), rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8),
            rng.normal(0, 1, (2, 8)).astype(np.float32))


def test_policy_islands_come_from_op_types(random_tiny_engine):
    encoder = onnx.load(str(random_tiny_engine / "encoder.onnx"))
    norms = [n.name for n in encoder.graph.node if n.op_type == "LayerNormalization"]
    assert norms and fp32_islands(encoder, POLICIES["layernorm"]) == norms
    assert fp32_islands(encoder, POLICIES["naive"]) == []
    residual = fp32_islands(encoder, POLICIES["layernorm-residual"])
    adds = [n.name for n in encoder.graph.node if n.name in residual and n.op_type == "Add"]
    # the position-embedding add, then two residual adds per block; the last one feeds the neck
    blocks = sum(n.op_type == "Softmax" for n in encoder.graph.node)
    assert len(adds) == 1 + 2 * blocks and set(residual) == set(norms) | set(adds)
    attention = set(fp32_islands(encoder, POLICIES["layernorm-residual-attention"])) - set(residual)
    kinds = collections.Counter(n.op_type for n in encoder.graph.node if n.name in attention)
    assert kinds["Softmax"] == blocks and kinds["MatMul"] == blocks and kinds["Einsum"] == 2 * blocks
    decoder = onnx.load(str(random_tiny_engine / "decoder.onnx"))
    assert DEFAULT_POLICY is policy_named("layernorm-residual-fp32-decoder")
    assert len(fp32_islands(decoder, DEFAULT_POLICY, graph="decoder")) == len(decoder.graph.node)
    assert to_mixed_fp16(decoder, DEFAULT_POLICY, graph="decoder") == decoder
    # the ablation of the default: the encoder as "layernorm", the decoder as the default's
    lean = POLICIES["layernorm-fp32-decoder"]
    assert fp32_islands(encoder, lean) == norms
    assert len(fp32_islands(decoder, lean, graph="decoder")) == len(decoder.graph.node)
    with pytest.raises(InvalidInputError, match="policy"):
        policy_named("bf16-everything")


def test_emulation_matches_numpy_half_precision(weights):
    weight, scale, shift, bias, x = weights
    model = _tiny_graph(weight, scale, shift, bias)
    h = _half(_half(x) @ _half(weight))  # MatMul in FP16: rounded operands and result
    exact = np.float32

    # layernorm policy: the LayerNorm runs in FP32 on the rounded MatMul output
    n = _layer_norm(h, scale, shift, exact)
    expected = _half(_softmax(_half(_half(n) + _half(bias))))
    got = _run(emulate_fp16(model, POLICIES["layernorm"]), x)
    np.testing.assert_allclose(got, expected, rtol=2**-10, atol=1e-6)
    fp32 = _run(model, x)
    assert np.abs(got - fp32).max() > 1e-5  # the rounding is really there

    # naive: the LayerNorm too, step by step
    n = _layer_norm(h, scale, shift, _half)
    expected = _half(_softmax(_half(n + _half(bias))))
    np.testing.assert_allclose(_run(emulate_fp16(model, POLICIES["naive"]), x), expected, rtol=2**-10, atol=1e-6)


def test_naive_layer_norm_overflows_and_the_policy_does_not(weights):
    _, scale, shift, _, x = weights
    offset = np.zeros(8, np.float32)
    offset[3] = 400.0  # an outlier channel: 400 fits FP16, its squared deviation (~1.2e5) does not
    nodes = [helper.make_node("Add", ["x", "offset"], ["h"], name="outlier"),
             helper.make_node("LayerNormalization", ["h", "scale", "shift"], ["y"], name="norm", epsilon=EPS)]
    inits = [numpy_helper.from_array(v.astype(np.float32), k)
             for k, v in {"offset": offset, "scale": scale, "shift": shift}.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 9

    reference = _run(model, x)
    assert np.isfinite(reference).all() and np.abs(reference[:, 3]).max() > 2  # the outlier normalises to ~2.6
    naive = _run(emulate_fp16(model, POLICIES["naive"]), x)
    # variance inf, so every normalised value is 0: the output is the shift, whatever the input
    np.testing.assert_array_equal(naive, np.broadcast_to(_half(shift), naive.shape))
    kept = _run(emulate_fp16(model, POLICIES["layernorm"]), x)
    np.testing.assert_allclose(kept, reference, atol=2e-3)


def test_optimised_sessions_keep_the_rounding(weights):
    weight, scale, shift, bias, x = weights
    emulated = emulate_fp16(_tiny_graph(weight, scale, shift, bias), POLICIES["naive"])
    np.testing.assert_array_equal(_run(emulated, x), _run(emulated, x, ort.GraphOptimizationLevel.ORT_ENABLE_ALL))


def test_mixed_fp16_graph_keeps_io_types_and_fp32_islands(random_tiny_engine):
    encoder = onnx.load(str(random_tiny_engine / "encoder.onnx"))
    mixed = to_mixed_fp16(encoder)
    onnx.checker.check_model(mixed, full_check=True)
    assert [i.type.tensor_type.elem_type for i in mixed.graph.input] == [TensorProto.FLOAT]
    assert [o.type.tensor_type.elem_type for o in mixed.graph.output] == [TensorProto.FLOAT]
    producers = {o: n for n in mixed.graph.node for o in n.output}
    inits = {t.name: t.data_type for t in mixed.graph.initializer}
    norms = [n for n in mixed.graph.node if n.op_type == "LayerNormalization"]
    assert norms
    for norm in norms:  # every LayerNorm reads FP32: a Cast to float, or FP32 parameters
        data = producers[norm.input[0]]
        assert data.op_type == "Cast" and data.attribute[0].i == TensorProto.FLOAT
        assert all(inits.get(p, TensorProto.FLOAT) == TensorProto.FLOAT for p in norm.input[1:])
    matmul_weights = [n.input[1] for n in mixed.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    assert matmul_weights and all(inits[w] == TensorProto.FLOAT16 for w in matmul_weights)

    pixels = np.random.default_rng(1).normal(0, 1, (1, 3, 1024, 1024)).astype(np.float32)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    fp32 = ort.InferenceSession(str(random_tiny_engine / "encoder.onnx")).run(None, {"pixel_values": pixels})[0]
    half = ort.InferenceSession(mixed.SerializeToString(), options).run(None, {"pixel_values": pixels})[0]
    assert half.dtype == np.float32
    cosine = float((fp32 * half).sum() / np.linalg.norm(fp32) / np.linalg.norm(half))
    assert 0.999 < cosine < 1.0
