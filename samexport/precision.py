"""FP16 precision policy: which nodes of an exported graph stay FP32, and graphs that apply it.

The policy is computed from the ONNX graph alone (op types and graph structure, no names baked
in), so the same rule serves the onnxruntime FP16 build, the TensorRT build (a strongly typed
network parsed from the same mixed-precision ONNX) and the CPU emulation that proves it.

Why: an FP16 LayerNorm squares the deviations from the mean. SAM checkpoints carry a few
residual-stream channels in the thousands (segment-anything #540, #696: ViT-H in half precision
gives garbage), and 300**2 already passes FP16's largest finite value (65504), so the variance
becomes inf and the image is lost. The activations themselves stay inside the FP16 range; only
the statistics do not. ``benchmarks/fp16_policy.py`` measures the candidates in
:data:`POLICIES` on random and stress weights (``random:vit_b-stress``, :mod:`samexport.checkpoints.stress`);
the default, :data:`DEFAULT_POLICY`, is the one that met the bar (embedding cosine >= 0.999,
mask IoU >= 0.98 for >= 99% of prompts): FP32 LayerNorms and residual stream in the encoder,
an FP32 decoder (``docs/precision.md`` has the figures).

Emulation (:func:`emulate_fp16`): an FP32 graph that rounds every tensor an FP16 engine would
store in FP16 (Cast to float16 and back) and computes each node in FP32 from those rounded
values. That is how TensorRT's FP16 kernels behave for GEMMs and convolutions (FP16 storage,
FP32 accumulation). A LayerNormalization node that is *not* an island is decomposed into
ReduceMean / Sub / Mul / ReduceMean / Add / Sqrt / Div / Mul / Add, each rounded to FP16,
because that is what an FP16 LayerNorm computes (TensorRT warns that its FP16 normalization
can overflow for this reason; older exports decompose it anyway). Where TensorRT fuses several
ops into one kernel it rounds less often than the emulation, so the emulation errs on the
pessimistic side for fused FP16 regions and is exact for the FP32 islands. onnxruntime's CPU
provider running an FP16 graph is *not* a faithful proxy: it computes many FP16 ops in FP32
(including LayerNorm statistics), so a naive FP16 graph looks fine there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from samrt.errors import InvalidInputError

__all__ = [
    "PrecisionPolicy",
    "POLICIES",
    "DEFAULT_POLICY",
    "policy_named",
    "fp32_islands",
    "to_mixed_fp16",
    "emulate_fp16",
]

FP16_MAX = 65504.0


@dataclass(frozen=True, kw_only=True)
class PrecisionPolicy:
    """Which nodes an FP16 build keeps in FP32.

    name: identifier stored in manifests; fp32_op_types: op types kept in FP32 (every node of
    these types); residual_stream: also the Adds of the residual stream (those feeding a
    LayerNorm, and the Adds reading them); attention_logits: also everything from the q.k^T and
    relative-position products to the Softmax; fp32_graphs: graphs ("encoder", "decoder") kept
    entirely in FP32; note: why, in one line.
    """

    name: str
    fp32_op_types: tuple[str, ...] = ()
    residual_stream: bool = False
    attention_logits: bool = False
    fp32_graphs: tuple[str, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "fp32_op_types": list(self.fp32_op_types),
                "residual_stream": self.residual_stream, "attention_logits": self.attention_logits,
                "fp32_graphs": list(self.fp32_graphs), "note": self.note}


_LN = ("LayerNormalization",)
POLICIES: dict[str, PrecisionPolicy] = {
    p.name: p
    for p in (
        PrecisionPolicy(name="naive", note="every float op in FP16 (the failure case)"),
        PrecisionPolicy(name="layernorm", fp32_op_types=_LN,
                        note="LayerNorm statistics in FP32; everything else FP16"),
        PrecisionPolicy(name="layernorm-residual", fp32_op_types=_LN, residual_stream=True,
                        note="LayerNorm and the residual stream in FP32"),
        PrecisionPolicy(name="layernorm-residual-attention", fp32_op_types=_LN, residual_stream=True,
                        attention_logits=True,
                        note="LayerNorm, the residual stream and the attention logits in FP32"),
        PrecisionPolicy(name="layernorm-fp32-decoder", fp32_op_types=_LN, fp32_graphs=("decoder",),
                        note="encoder: LayerNorm statistics in FP32; decoder all FP32"),
        PrecisionPolicy(name="layernorm-residual-fp32-decoder", fp32_op_types=_LN, residual_stream=True,
                        fp32_graphs=("decoder",),
                        note="encoder: LayerNorm and the residual stream in FP32; decoder all FP32"),
    )
}
DEFAULT_POLICY = POLICIES["layernorm-residual-fp32-decoder"]


def policy_named(name: str) -> PrecisionPolicy:
    if name not in POLICIES:
        raise InvalidInputError("policy", name, f"one of {sorted(POLICIES)}")
    return POLICIES[name]


def fp32_islands(model, policy: PrecisionPolicy, *, graph: str | None = None) -> list[str]:
    """Names of the nodes of ``model`` (an onnx.ModelProto; ``graph`` "encoder" / "decoder" when
    known) that ``policy`` keeps in FP32, in graph order: every node for a graph in
    ``policy.fp32_graphs``.

    With ``residual_stream``, also every Add whose output a LayerNormalization reads, and every
    Add that reads such an Add's output (the residual stream from block to block, and its last
    add, which feeds the neck).
    """
    if graph in policy.fp32_graphs:
        return [node.name for node in model.graph.node]
    kept = {node.name for node in model.graph.node if node.op_type in set(policy.fp32_op_types)}
    if policy.residual_stream:
        kept |= _residual_adds(model)
    if policy.attention_logits:
        kept |= _attention_logits(model)
    return [node.name for node in model.graph.node if node.name in kept]


_LOGIT_PATH_OPS = {"Add", "Mul", "Div", "Sub", "Reshape", "Unsqueeze", "Squeeze", "Transpose", "Softmax"}
_LOGIT_SOURCES = {"MatMul", "Einsum"}


def _attention_logits(model) -> set[str]:
    """Each Softmax and everything between it and the products that make its logits (q.k^T,
    the relative-position Einsums, scaling and bias adds, and the reshapes in between)."""
    producers = {out: node for node in model.graph.node for out in node.output}
    names: set[str] = set()
    pending = [node for node in model.graph.node if node.op_type == "Softmax"]
    while pending:
        node = pending.pop()
        if node.name in names:
            continue
        names.add(node.name)
        if node.op_type in _LOGIT_SOURCES:
            continue
        for name in node.input:
            parent = producers.get(name)
            if parent is not None and parent.op_type in _LOGIT_PATH_OPS | _LOGIT_SOURCES:
                pending.append(parent)
    return names


def _residual_adds(model) -> set[str]:
    producers = {out: node for node in model.graph.node for out in node.output}
    stream = {producers[node.input[0]].output[0] for node in model.graph.node
              if node.op_type == "LayerNormalization" and node.input[0] in producers
              and producers[node.input[0]].op_type == "Add"}
    names = {producers[t].name for t in stream}
    grown = True
    while grown:
        grown = False
        for node in model.graph.node:
            if node.op_type == "Add" and node.name not in names and any(i in stream for i in node.input):
                names.add(node.name)
                stream.add(node.output[0])
                grown = True
    return names


def _ensure_node_names(model) -> None:
    used = {node.name for node in model.graph.node if node.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)


def to_mixed_fp16(model, policy: PrecisionPolicy = DEFAULT_POLICY, *, graph: str | None = None):
    """A copy of ``model`` with FP16 weights and activations except the policy's FP32 islands.

    Graph inputs and outputs keep their FP32 types (Casts are inserted after the inputs and
    before the outputs), so the graph contract of :mod:`samrt.spec` is unchanged. Weights beyond
    the FP16 range are clamped by the converter (none are, in SAM). Uses onnxruntime's
    ``float16.convert_float_to_float16`` with the islands as its node block list.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    if graph in policy.fp32_graphs:
        return copy
    _ensure_node_names(copy)
    converted = convert_float_to_float16(copy, keep_io_types=True, node_block_list=fp32_islands(copy, policy),
                                         max_finite_val=FP16_MAX)
    _sort_topologically(converted.graph)  # the converter appends its input Casts at the end
    # The converter leaves some value_info entries with their old element type; shape inference
    # (and onnx.checker's full check) re-derives all of them from the nodes.
    del converted.graph.value_info[:]
    return converted


def _sort_topologically(graph) -> None:
    """Reorder ``graph.node`` so every node follows the producers of its inputs (stable)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        remaining = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                remaining.append(node)
        if len(remaining) == len(pending):
            raise ValueError(f"graph has a cycle or a missing input at node {remaining[0].name!r}")
        pending = remaining
    copies = [type(n)() for n in ordered]
    for target, node in zip(copies, ordered, strict=True):
        target.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def _float_tensors(model) -> set[str]:
    """Names of every FLOAT (fp32) tensor in the graph: inputs, initializers, intermediates."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    floats = set()
    for info in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        if info.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            floats.add(info.name)
    floats.update(t.name for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    for node in model.graph.node:  # Constant nodes are not always covered by value_info
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == onnx.TensorProto.FLOAT:
                    floats.add(node.output[0])
    return floats


def _decompose_layer_norm(node, helper):
    """Primitive nodes computing ``node`` (LayerNormalization over the last axis) step by step."""
    x, scale = node.input[0], node.input[1]
    bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
    axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
    if axis != -1:
        raise InvalidInputError("LayerNormalization.axis", axis, "-1 (SAM's export normalises the last axis)")
    p = f"{node.name}__fp16"
    axes, eps_name = f"{p}_axes", f"{p}_eps"
    constants = [
        helper.make_tensor(axes, 7, [1], [-1]),
        helper.make_tensor(eps_name, 1, [], [eps]),
    ]
    nodes = [
        helper.make_node("ReduceMean", [x, axes], [f"{p}_mean"], name=f"{p}_mean", keepdims=1),
        helper.make_node("Sub", [x, f"{p}_mean"], [f"{p}_centred"], name=f"{p}_centred"),
        helper.make_node("Mul", [f"{p}_centred", f"{p}_centred"], [f"{p}_square"], name=f"{p}_square"),
        helper.make_node("ReduceMean", [f"{p}_square", axes], [f"{p}_var"], name=f"{p}_var", keepdims=1),
        helper.make_node("Add", [f"{p}_var", eps_name], [f"{p}_var_eps"], name=f"{p}_var_eps"),
        helper.make_node("Sqrt", [f"{p}_var_eps"], [f"{p}_std"], name=f"{p}_std"),
        helper.make_node("Div", [f"{p}_centred", f"{p}_std"], [f"{p}_normed"], name=f"{p}_normed"),
        helper.make_node("Mul", [f"{p}_normed", scale], [f"{p}_scaled" if bias else node.output[0]],
                         name=f"{p}_scaled"),
    ]
    if bias:
        nodes.append(helper.make_node("Add", [f"{p}_scaled", bias], [node.output[0]], name=f"{p}_shifted"))
    return nodes, constants


def emulate_fp16(model, policy: PrecisionPolicy = DEFAULT_POLICY, *, graph: str | None = None):
    """An FP32 graph that reproduces FP16 execution under ``policy`` on any CPU (module docstring).

    Every FP32 tensor produced by a non-island node is rounded to FP16 right after it; a tensor
    produced by an island, a graph input or an initializer is rounded only on its way into
    non-island nodes (as the Casts of :func:`to_mixed_fp16` do). Non-island LayerNorms are
    decomposed first. Run it with graph optimisations off so no Cast pair is folded away.
    """
    import onnx
    from onnx import helper, numpy_helper

    work = onnx.ModelProto()
    work.CopyFrom(model)
    if graph in policy.fp32_graphs:
        return work
    _ensure_node_names(work)
    islands = set(fp32_islands(work, policy))

    # 1. decompose the LayerNorms that run in FP16
    new_nodes, constants = [], []
    for node in work.graph.node:
        if node.op_type == "LayerNormalization" and node.name not in islands:
            parts, consts = _decompose_layer_norm(node, helper)
            new_nodes.extend(parts)
            constants.extend(consts)
        else:
            new_nodes.append(node)
    del work.graph.node[:]
    work.graph.node.extend(new_nodes)
    work.graph.initializer.extend(constants)

    floats = _float_tensors(work)
    graph_outputs = {o.name for o in work.graph.output}
    initializers = {t.name: t for t in work.graph.initializer}

    # 2. round FP16 tensors; island-produced tensors get a rounded copy for FP16 consumers
    rounded_copy: dict[str, str] = {}
    out_nodes, extra_inits = [], []

    def rounded(name: str) -> str:
        if name not in rounded_copy:
            copy = f"{name}__as_fp16"
            if name in initializers:
                values = numpy_helper.to_array(initializers[name]).astype(np.float16).astype(np.float32)
                extra_inits.append(numpy_helper.from_array(values, copy))
            else:
                out_nodes.extend(_round_trip(helper, name, copy))
            rounded_copy[name] = copy
        return rounded_copy[name]

    fp16_produced: dict[str, str] = {}  # original output name -> name of its unrounded fp32 value
    for node in work.graph.node:
        in_fp16 = node.name not in islands
        if in_fp16:
            for i, name in enumerate(node.input):
                if name in fp16_produced or name not in floats:
                    continue  # already rounded at its producer, or not a float tensor
                node.input[i] = rounded(name)
        out_nodes.append(node)
        if in_fp16:
            for i, name in enumerate(node.output):
                if name in floats:
                    raw = f"{name}__fp32"
                    node.output[i] = raw
                    out_nodes.extend(_round_trip(helper, raw, name))
                    fp16_produced[name] = raw
    del work.graph.node[:]
    work.graph.node.extend(out_nodes)
    work.graph.initializer.extend(extra_inits)
    del work.graph.value_info[:]
    missing = graph_outputs - {o for n in work.graph.node for o in n.output}
    if missing:
        raise RuntimeError(f"emulation lost graph outputs {sorted(missing)}")
    return work


def _round_trip(helper, source: str, target: str) -> tuple:
    """Two Casts that round ``source`` to the nearest FP16 value (inf beyond ±65504), as FP32."""
    return (helper.make_node("Cast", [source], [f"{target}__h"], name=f"{target}__to_fp16", to=10),
            helper.make_node("Cast", [f"{target}__h"], [target], name=f"{target}__to_fp32", to=1))
