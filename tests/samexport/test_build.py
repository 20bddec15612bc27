"""``samexport build``: the int8 onnxruntime build, its accuracy summary, and its refusals."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from samrt import SamRuntime
from samrt.errors import InvalidInputError
from samrt.manifest import load_manifest

import samexport.build as build_module
from samexport.build import BuildSettings, build_engine, tensorrt_missing
from samexport.cli import main


@pytest.fixture(scope="module")
def tiny_engine(random_tiny_engine):
    return random_tiny_engine


def _ops(path):
    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_int8_build_quantises_weight_matmuls_and_records_its_accuracy(tiny_engine, tmp_path):
    out = tmp_path / "tiny-int8"
    result = CliRunner().invoke(main, ["build", str(tiny_engine), "--precision", "int8", "--out", str(out),
                                       "--check-prompts", "2"])
    assert result.exit_code in (0, 1), result.output
    manifest = load_manifest(out)  # hashes of the new artefacts verify
    assert manifest["precision"] == "int8" and manifest["build"]["target"] == "onnxruntime"
    fp32, int8 = _ops(tiny_engine / "encoder.onnx"), _ops(out / "encoder.onnx")
    # the default: two weight terms and two activation terms per weight MatMul (one uint8
    # quantisation, its remainder, two or three int8 products); activation x activation MatMuls stayed
    weight_matmuls = fp32["MatMul"] - int8["MatMul"]
    assert 0 < int8["MatMul"] and weight_matmuls > 0
    assert int8["DynamicQuantizeLinear"] == int8["DynamicQuantizeMatMul"] == weight_matmuls
    assert weight_matmuls <= int8["MatMulIntegerToFloat"] <= 2 * weight_matmuls
    assert int8["LayerNormalization"] == fp32["LayerNormalization"]
    assert manifest["build"]["method"].startswith("samexport.int8.two_term_int8")
    assert "remainder" in manifest["build"]["method"]
    # the decoder stays fp32, byte for byte
    assert (out / "decoder.onnx").read_bytes() == (tiny_engine / "decoder.onnx").read_bytes()
    accuracy = manifest["accuracy"]
    assert accuracy["prompts"] == 2 * 5 and accuracy["images"] == ["astronaut"]
    assert accuracy["passed"] == (not accuracy["failed"]) == (result.exit_code == 0)
    assert 0.5 < accuracy["mask_iou"]["mean"] < 1.0  # quantised, so not identical; not garbage either
    assert 0.999 < accuracy["embeddings_cosine_min"] < 1.0

    runtime = SamRuntime.load(out, backend="onnxruntime")
    reference = SamRuntime.load(tiny_engine, backend="onnxruntime")
    image = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    a, b = runtime.embed(image), reference.embed(image)
    assert a.embeddings.shape == b.embeddings.shape and not np.array_equal(a.embeddings, b.embeddings)
    masks = runtime.predict(a, boxes=[10, 10, 80, 100]).masks
    assert masks.shape == (1, 3, 120, 90) and masks.dtype == np.bool_


def test_int8_engine_warns_on_a_cpu_without_int8_dot_products(tiny_engine, tmp_path, monkeypatch):
    import warnings

    import samrt.cpu
    from samrt.errors import PerformanceWarning

    int8 = build_engine(tiny_engine, settings=BuildSettings(precision="int8", check_prompts=0), out_dir=tmp_path / "q")
    monkeypatch.setattr(samrt.cpu, "int8_dot_products", lambda: False)
    with pytest.warns(PerformanceWarning, match="no int8 dot-product instructions.*fp32 engine"):
        SamRuntime.load(int8, backend="onnxruntime").close()
    one_term = build_engine(tiny_engine, settings=BuildSettings(precision="int8", int8_terms=1, check_prompts=0),
                            out_dir=tmp_path / "q1")
    assert load_manifest(one_term)["build"]["int8_terms"] == 1 and load_manifest(int8)["build"]["int8_terms"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SamRuntime.load(tiny_engine, backend="onnxruntime").close()  # fp32: nothing to say
        SamRuntime.load(one_term, backend="onnxruntime").close()  # one product per MatMul: still faster than fp32
        for answer in (True, None):  # int8 instructions present, or unknown: no warning
            monkeypatch.setattr(samrt.cpu, "int8_dot_products", lambda answer=answer: answer)
            SamRuntime.load(int8, backend="onnxruntime").close()


def _embedding_error(engine: Path, reference_engine: Path) -> float:
    """Max abs difference of ``engine``'s image embeddings from ``reference_engine``'s (one random image)."""
    image = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    embeddings = [SamRuntime.load(path, backend="onnxruntime").embed(image).embeddings
                  for path in (engine, reference_engine)]
    return float(np.abs(embeddings[0] - embeddings[1]).max())


def test_int8_one_term_is_onnxruntimes_quantize_dynamic_and_less_accurate(tiny_engine, tmp_path):
    built = {terms: build_engine(tiny_engine, settings=BuildSettings(precision="int8", int8_terms=terms,
                                                                     int8_activation_terms=activations,
                                                                     check_prompts=0),
                                 out_dir=tmp_path / f"int8-{terms}")
             for terms, activations in ((1, None), (2, 1))}
    ops = _ops(built[1] / "encoder.onnx")
    assert ops["MatMulInteger"] > 0 and ops["DynamicQuantizeLinear"] > 0 and not ops["DynamicQuantizeMatMul"]
    assert load_manifest(built[1])["build"]["method"].startswith("onnxruntime.quantization.quantize_dynamic")
    assert build_module.default_output(tiny_engine, BuildSettings(precision="int8", int8_terms=1)).name.endswith(
        "-int8-one-term")
    errors = {terms: _embedding_error(path, tiny_engine) for terms, path in built.items()}
    assert 0 < errors[2] < errors[1]
    with pytest.raises(InvalidInputError, match="--int8-terms"):
        BuildSettings(precision="int8", int8_terms=3)


def test_int8_second_activation_term_brings_the_build_close_to_fp32(tiny_engine, tmp_path):
    """Two weight terms with uint8 activations only (--int8-activation-terms 1) against the
    default, which adds each activation's uint8 remainder."""
    built = {terms: build_engine(tiny_engine, settings=BuildSettings(precision="int8", int8_activation_terms=terms,
                                                                     check_prompts=0),
                                 out_dir=tmp_path / f"int8-a{terms}")
             for terms in (1, 2)}
    ops = _ops(built[1] / "encoder.onnx")
    assert ops["DynamicQuantizeMatMul"] > 0 and not ops["DynamicQuantizeLinear"] and not ops["MatMulIntegerToFloat"]
    assert "remainder" not in load_manifest(built[1])["build"]["method"]
    assert build_module.default_output(tiny_engine, BuildSettings(precision="int8", int8_activation_terms=1)).name \
        .endswith("-int8-uint8-activations")
    assert build_module.default_output(tiny_engine, BuildSettings(precision="int8")).name.endswith("-int8")
    errors = {terms: _embedding_error(path, tiny_engine) for terms, path in built.items()}
    assert 0 < errors[2] < errors[1] / 10
    with pytest.raises(InvalidInputError, match="--int8-activation-terms.*two weight terms"):
        BuildSettings(precision="int8", int8_terms=1, int8_activation_terms=2)
    with pytest.raises(InvalidInputError, match="--int8-activation-terms"):
        BuildSettings(precision="int8", int8_activation_terms=3)
    assert BuildSettings(precision="int8", int8_terms=1).activation_terms == 1
    assert BuildSettings(precision="int8").activation_terms == 2


def test_fp16_build_writes_fp16_graphs_with_fp32_islands(tiny_engine, tmp_path):
    out = tmp_path / "tiny-fp16"
    result = CliRunner().invoke(main, ["build", str(tiny_engine), "--precision", "fp16", "--target", "onnxruntime",
                                       "--out", str(out), "--check-prompts", "1"])
    assert result.exit_code in (0, 1), result.output
    manifest = load_manifest(out)
    assert manifest["precision"] == "fp16" and manifest["emulation"] is False
    policy = manifest["precision_policy"]
    assert policy["name"] == "layernorm-residual-fp32-decoder" and policy["fp32_graphs"] == ["decoder"]
    encoder_ops = _ops(tiny_engine / "encoder.onnx")
    blocks = encoder_ops["Softmax"]
    assert policy["fp32_nodes"]["encoder"] == encoder_ops["LayerNormalization"] + 1 + 2 * blocks
    assert policy["fp32_nodes"]["decoder"] == sum(_ops(tiny_engine / "decoder.onnx").values())
    encoder = onnx.load(str(out / "encoder.onnx"))
    types = collections.Counter(t.data_type for t in encoder.graph.initializer)
    assert types[onnx.TensorProto.FLOAT16] > types[onnx.TensorProto.FLOAT]
    decoder = onnx.load(str(out / "decoder.onnx"))
    assert onnx.TensorProto.FLOAT16 not in {t.data_type for t in decoder.graph.initializer}
    accuracy = manifest["accuracy"]
    assert accuracy["passed"] == (result.exit_code == 0)
    assert accuracy["embeddings_cosine_min"] > 0.999 and accuracy["mask_iou"]["mean"] > 0.9

    runtime = SamRuntime.load(out, backend="onnxruntime")
    image = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    result = runtime.predict(runtime.embed(image), points=[[40, 50]])
    assert result.masks.shape == (1, 3, 120, 90) and result.iou_scores.dtype == np.float32


def test_fp16_emulated_build_is_fp32_rounding_to_fp16(tiny_engine, tmp_path):
    out = build_engine(tiny_engine, settings=BuildSettings(precision="fp16", emulate=True, policy="naive",
                                                           check_prompts=0), out_dir=tmp_path / "emulated")
    manifest = load_manifest(out)
    assert manifest["emulation"] is True and manifest["precision_policy"]["name"] == "naive"
    ops = _ops(out / "encoder.onnx")
    assert ops["LayerNormalization"] == 0 and ops["Cast"] > 100  # decomposed, and rounded everywhere
    model = onnx.load(str(out / "encoder.onnx"))
    assert {t.data_type for t in model.graph.initializer} <= {onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}


def test_fp32_build_is_a_verified_copy_without_check(tiny_engine, tmp_path):
    out = tmp_path / "copy"
    result = CliRunner().invoke(main, ["build", str(tiny_engine), "--precision", "fp32", "--target", "onnxruntime",
                                       "--out", str(out), "--check-prompts", "0"])
    assert result.exit_code == 0, result.output
    manifest = load_manifest(out)
    assert "accuracy" not in manifest and manifest["precision"] == "fp32"
    assert (out / "encoder.onnx").read_bytes() == (tiny_engine / "encoder.onnx").read_bytes()


@pytest.mark.skipif(tensorrt_missing() is None, reason="TensorRT and a GPU are present: the refusal does not apply")
def test_tensorrt_build_without_tensorrt_is_one_sentence(tiny_engine, tmp_path):
    result = CliRunner().invoke(main, ["build", str(tiny_engine), "--precision", "fp16", "--target", "tensorrt",
                                       "--out", str(tmp_path / "trt")])
    assert result.exit_code == 1
    assert result.output.count("error:") == 1 and "Traceback" not in result.output
    assert "TensorRT" in result.output and "--target onnxruntime" in result.output
    assert not (tmp_path / "trt").exists()


def test_auto_target_without_tensorrt_says_it_builds_for_onnxruntime(tiny_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(build_module, "tensorrt_missing", lambda: "TensorRT is not installed (test)")
    result = CliRunner().invoke(main, ["build", str(tiny_engine), "--precision", "fp16", "--out",
                                       str(tmp_path / "auto"), "--check-prompts", "0"])
    assert result.exit_code == 0, result.output
    assert "TensorRT is not installed (test), so --target auto builds FP16 ONNX for onnxruntime" in result.output
    assert load_manifest(tmp_path / "auto")["build"]["target"] == "onnxruntime"


def test_tensorrt_refusals_need_no_tensorrt(tiny_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(build_module, "tensorrt_missing", lambda: None)  # as if TensorRT were here
    with pytest.raises(build_module.BuildError, match="calibration"):
        build_engine(tiny_engine, settings=BuildSettings(target="tensorrt", precision="int8"), out_dir=tmp_path / "x")
    result = CliRunner().invoke(main, ["build", str(tiny_engine), "--precision", "fp16", "--target", "tensorrt",
                                       "--max-prompts", "0", "--out", str(tmp_path / "y")])
    assert result.exit_code == 1 and "--max-prompts" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_refusals(tiny_engine, tmp_path):
    runner = CliRunner()

    def refused(*args):
        result = runner.invoke(main, ["build", *args])
        assert result.exit_code == 1, result.output
        assert result.output.count("error:") == 1 and "Traceback" not in result.output
        return result.output

    assert "--emulate" in refused(str(tiny_engine), "--precision", "int8", "--emulate")
    assert "engine directory not found" in refused(str(tmp_path / "missing"), "--precision", "int8")
    assert "--out" in refused(str(tiny_engine), "--precision", "int8", "--out", str(tiny_engine))
    int8 = tmp_path / "int8"
    assert runner.invoke(main, ["build", str(tiny_engine), "--precision", "int8", "--out", str(int8),
                                "--check-prompts", "0"]).exit_code == 0
    assert "fp32 engine directory" in refused(str(int8), "--precision", "int8", "--out", str(tmp_path / "again"))


def test_interrupted_build_leaves_nothing(tiny_engine, tmp_path, monkeypatch):
    def interrupted(source, target, **_):
        target.write_bytes(b"half a graph")
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "quantize_int8", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_engine(tiny_engine, settings=BuildSettings(precision="int8"), out_dir=tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_settings_are_validated():
    from samrt.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="--precision"):
        BuildSettings(precision="fp8")
    with pytest.raises(InvalidInputError, match="--target"):
        BuildSettings(target="tvm")
    with pytest.raises(InvalidInputError, match="policy"):
        BuildSettings(precision="fp16", policy="all-fp16")
    assert json.dumps(BuildSettings().__dict__)
