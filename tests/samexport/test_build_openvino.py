"""samexport build --target openvino: IR beside the ONNX graphs, the precision recorded and
read back, the closing accuracy check on OpenVINO, and the runtime choosing it."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from samrt import SamRuntime
from samrt.backends import openvino as openvino_backend
from samrt.errors import BackendUnavailableError, InvalidInputError

from samexport.build import BuildError, BuildSettings, build_engine
from samexport.checkpoints.sources import load_source
from samexport.cli import main

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def reference():
    return load_source("random:tiny")[0]


@pytest.fixture(autouse=True)
def no_telemetry(monkeypatch):
    """OpenVINO's converter sends usage telemetry over the network; nothing of ours may."""
    backend = pytest.importorskip("openvino_telemetry.backend.backend_ga4")
    sent: list = []
    monkeypatch.setattr(backend.GA4Backend, "send", lambda self, *args, **kwargs: sent.append(args))
    yield
    assert not sent, f"{len(sent)} telemetry messages"


def test_fp32_build_runs_on_openvino_and_passes(random_tiny_engine, reference, tmp_path):
    built = build_engine(random_tiny_engine, settings=BuildSettings(target="openvino", precision="fp32",
                                                                   check_prompts=2),
                         out_dir=tmp_path / "ov", reference=reference)
    runtime = SamRuntime.load(built)
    manifest = runtime.manifest
    assert runtime.backend == "openvino" and manifest.openvino.precision == "fp32"
    assert manifest.openvino.models == {"encoder": "encoder.xml", "decoder": "decoder.xml"}
    assert {"encoder.xml", "encoder.bin", "decoder.xml", "decoder.bin"} <= set(manifest.artifacts)
    assert runtime.encoder.describe()["precision"] == "fp32"
    assert manifest.accuracy.passed and manifest.accuracy.extra["backend"] == "openvino"
    image = np.random.default_rng(0).integers(0, 256, (100, 140, 3), dtype=np.uint8)
    ours = runtime.predict(runtime.embed(image), points=[[[50, 40]]])
    onnx = SamRuntime.load(built, backend="onnxruntime")
    theirs = onnx.predict(onnx.embed(image), points=[[[50, 40]]])
    assert np.abs(ours.low_res_logits - theirs.low_res_logits).max() <= 1e-3
    result = CliRunner().invoke(main, ["inspect", str(built)])
    assert result.exit_code == 0 and "openvino   OpenVINO" in result.output and "at fp32" in result.output


@pytest.mark.skipif("BF16" not in openvino_backend.cpu_capabilities(), reason="this CPU has no bf16")
def test_bf16_build_records_and_runs_bf16(random_tiny_engine, tmp_path):
    built = build_engine(random_tiny_engine, settings=BuildSettings(target="openvino", precision="bf16",
                                                                   check_prompts=0), out_dir=tmp_path / "bf16")
    runtime = SamRuntime.load(built)
    assert runtime.manifest.precision == "bf16" and runtime.manifest.openvino.precision == "bf16"
    assert runtime.encoder.describe()["precision"] == "bf16"
    assert SamRuntime.load(built, backend="onnxruntime").backend == "onnxruntime"  # the ONNX graphs stay fp32


def test_unsupported_requests_say_so(random_tiny_engine, tmp_path, monkeypatch):
    with pytest.raises(BuildError, match="int8"):
        build_engine(random_tiny_engine, settings=BuildSettings(target="openvino", precision="int8"),
                     out_dir=tmp_path / "a")
    with pytest.raises(InvalidInputError, match="openvino"):
        build_engine(random_tiny_engine, settings=BuildSettings(target="onnxruntime", precision="bf16"),
                     out_dir=tmp_path / "b")
    monkeypatch.setattr(openvino_backend, "cpu_capabilities", lambda: ("FP32", "INT8"))
    with pytest.raises(BackendUnavailableError, match="cannot run OpenVINO at bf16"):
        build_engine(random_tiny_engine, settings=BuildSettings(target="openvino", precision="bf16"),
                     out_dir=tmp_path / "c")
    assert not any(tmp_path.iterdir())
