"""Every backend's runner satisfies samrt.backends.Runner, and SamRuntime uses nothing else."""

from __future__ import annotations

import importlib.machinery
import shutil
import sys

import numpy as np
import pytest
from samrt import SamRuntime
from samrt.backends import DESCRIBE_KEYS, Runner, check_runner, load_runners
from samrt.backends.onnxruntime import OnnxRuntimeRunner
from samrt.backends.tensorrt import cuda
from samrt.backends.tensorrt.profiles import profiles_to_dict
from samrt.errors import InferenceError
from samrt.manifest import artifact_record, load_manifest, read_manifest, write_manifest
from samrt.spec import TensorSpec, graph_contract

from samexport.tensorrt.profile_planning import plan_profiles
from samexport.torch_runner import TorchGraphRunner

from .. import fake_tensorrt


def _conforms(runner, graph: str) -> None:
    assert check_runner(runner) is runner
    inputs, outputs = graph_contract(graph)
    assert list(runner.inputs) == [t.name for t in inputs]
    assert sorted(runner.outputs) == sorted(t.name for t in outputs)
    assert all(isinstance(s, TensorSpec) for s in (*runner.inputs.values(), *runner.outputs.values()))
    assert set(DESCRIBE_KEYS) <= set(runner.describe())
    assert not runner.closed
    runner.close()
    assert runner.closed


def test_onnxruntime_runners_conform(random_tiny_engine):
    encoder, decoder = load_runners("onnxruntime", random_tiny_engine,
                                    graph_files=read_manifest(random_tiny_engine).graph_files(), tensorrt_plans=None)
    _conforms(encoder, "encoder")
    assert decoder.describe()["device"] == "cpu"
    _conforms(decoder, "decoder")
    with pytest.raises(InferenceError, match="closed"):
        decoder.infer({})


def test_tensorrt_runners_conform(random_tiny_engine, tmp_path, monkeypatch):
    directory = tmp_path / "trt"
    shutil.copytree(random_tiny_engine, directory)
    manifest = load_manifest(directory)
    profiles = plan_profiles(read_manifest(directory), max_prompts=4, max_points=2)
    trt, cudart = fake_tensorrt.make_modules(directory)
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(cuda, "load_cudart", lambda: cudart)
    manifest["tensorrt"] = {"version": trt.__version__, "gpu": "Fake GPU", "compute_capability": "9.0",
                            "precision": "fp32", "engines": fake_tensorrt.write_fake_plans(directory, profiles),
                            "profiles": {g: profiles_to_dict(p) for g, p in profiles.items()}}
    manifest["artifacts"] = {p.name: artifact_record(p) for p in sorted(directory.iterdir())
                             if p.is_file() and p.name != "manifest.json"}
    write_manifest(directory, manifest)
    typed = read_manifest(directory)
    encoder, decoder = load_runners("tensorrt", directory, graph_files=typed.graph_files(),
                                    tensorrt_plans=typed.tensorrt)
    assert decoder.describe()["backend"] == "tensorrt"
    _conforms(encoder, "encoder")
    _conforms(decoder, "decoder")


def test_the_torch_reference_runner_conforms(tiny_model):
    from samexport.graphs import DecoderGraph

    _conforms(TorchGraphRunner(DecoderGraph(tiny_model), graph="decoder"), "decoder")


class _Incomplete:
    graph = "decoder"
    inputs: dict = {}
    outputs: dict = {}

    def infer(self, feeds):
        return {}


def test_an_object_missing_part_of_the_interface_is_refused(random_tiny_engine):
    with pytest.raises(TypeError, match=r"closed.*close.*describe|lacks"):
        check_runner(_Incomplete())
    assert not isinstance(_Incomplete(), Runner)
    manifest = read_manifest(random_tiny_engine)
    with pytest.raises(TypeError, match="not a samrt runner"):
        SamRuntime(directory=random_tiny_engine, manifest=manifest, encoder=_Incomplete(), decoder=_Incomplete(),
                   backend="onnxruntime")


class _ProtocolOnly:
    """Forwards the Runner interface of a real runner and nothing else: an attribute SamRuntime
    read beyond it would raise AttributeError."""

    def __init__(self, runner) -> None:
        self.__runner = runner
        self.graph = runner.graph

    inputs = property(lambda self: self.__runner.inputs)
    outputs = property(lambda self: self.__runner.outputs)
    closed = property(lambda self: self.__runner.closed)

    def infer(self, feeds):
        return self.__runner.infer(feeds)

    def close(self) -> None:
        self.__runner.close()

    def describe(self):
        return self.__runner.describe()


def test_samruntime_uses_only_the_interface(random_tiny_engine):
    real = SamRuntime.load(random_tiny_engine, backend="onnxruntime")
    image = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    wrapped = SamRuntime(directory=random_tiny_engine, manifest=real.manifest, backend="onnxruntime",
                         encoder=_ProtocolOnly(real.encoder), decoder=_ProtocolOnly(real.decoder))
    assert isinstance(real.encoder, OnnxRuntimeRunner)
    wrapped.warmup()
    assert wrapped.ready()
    embedding = wrapped.embed(image)
    ours = wrapped.predict(embedding, points=[[[30, 40]], [[60, 20]]])
    theirs = real.predict(real.embed(image), points=[[[30, 40]], [[60, 20]]])
    np.testing.assert_array_equal(ours.low_res_logits, theirs.low_res_logits)
    assert len(wrapped.generate(image, points_per_side=4)) == len(real.generate(image, points_per_side=4))
    wrapped.close()
    assert not wrapped.ready()
