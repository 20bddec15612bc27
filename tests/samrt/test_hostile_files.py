"""Hostile engine directories and checkpoints: refused with a typed error, nothing read outside."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from samrt import SamRuntime
from samrt.errors import CheckpointError, ManifestError
from samrt.manifest import artifact_record, write_manifest

from samexport.checkpoints.files import load_state_dict_file


@pytest.fixture(scope="module")
def engine_dir(random_tiny_engine):
    return random_tiny_engine


def _rehash(directory):
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["artifacts"] = {name: artifact_record(directory / name) for name in manifest["artifacts"]}
    write_manifest(directory, manifest)


def _graph_reading(location: str) -> bytes:
    weight = numpy_helper.from_array(np.ones((4,), np.float32), "w")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [weight])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]).SerializeToString()


@pytest.mark.parametrize("location", ["../../../../etc/passwd", "/etc/passwd"])
def test_external_data_escaping_the_directory_is_refused(engine_dir, tmp_path, location):
    hostile = tmp_path / "engine"
    shutil.copytree(engine_dir, hostile)
    (hostile / "decoder.onnx").write_bytes(_graph_reading(location))
    _rehash(hostile)  # a consistent manifest: hashes prove integrity, not trust
    with pytest.raises(ManifestError, match="decoder.onnx") as info:
        SamRuntime.load(hostile, backend="onnxruntime")
    assert any(word in str(info.value) for word in ("escapes", "outside", "Absolute path"))


def test_symlinked_artefact_pointing_outside_is_refused(engine_dir, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    shutil.copy(engine_dir / "decoder.onnx", outside)  # same bytes: the hash alone would pass
    hostile = tmp_path / "engine"
    shutil.copytree(engine_dir, hostile)
    (hostile / "decoder.onnx").unlink()
    (hostile / "decoder.onnx").symlink_to(outside)
    with pytest.raises(ManifestError, match="outside the engine directory"):
        SamRuntime.load(hostile, backend="onnxruntime")


@pytest.mark.parametrize("name", ["../decoder.onnx", "/etc/passwd", "sub/../../x"])
def test_manifest_naming_files_outside_is_refused(engine_dir, tmp_path, name):
    hostile = tmp_path / "engine"
    shutil.copytree(engine_dir, hostile)
    manifest = json.loads((hostile / "manifest.json").read_text())
    manifest["artifacts"][name] = {"sha256": "0" * 64, "bytes": 1}
    write_manifest(hostile, manifest)
    with pytest.raises(ManifestError, match="outside the engine directory"):
        SamRuntime.load(hostile, backend="onnxruntime")


def _safetensors(header: dict, payload: bytes, *, length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + payload


@pytest.mark.parametrize("case", ["huge_header_length", "overlapping_offsets", "trailing_payload",
                                  "offsets_past_the_end", "not_json"])
def test_hostile_safetensors_are_refused(tmp_path, case):
    tensor = {"dtype": "F32", "shape": [2]}
    files = {
        "huge_header_length": _safetensors({"a": {**tensor, "data_offsets": [0, 8]}}, b"\0" * 8, length=1 << 60),
        "overlapping_offsets": _safetensors({"a": {**tensor, "data_offsets": [0, 8]},
                                             "b": {**tensor, "data_offsets": [4, 12]}}, b"\0" * 12),
        "trailing_payload": _safetensors({"a": {**tensor, "data_offsets": [0, 8]}}, b"\0" * 8 + b"#!/bin/sh\n" * 10),
        "offsets_past_the_end": _safetensors({"a": {**tensor, "data_offsets": [0, 8]}}, b"\0" * 4),
        "not_json": struct.pack("<Q", 5) + b"{oops" + b"\0" * 8,
    }
    path = tmp_path / "model.safetensors"
    path.write_bytes(files[case])
    with pytest.raises(CheckpointError, match="model.safetensors"):
        load_state_dict_file(path)


def test_a_bit_flipped_graph_is_refused_before_loading(engine_dir, tmp_path):
    hostile = tmp_path / "engine"
    shutil.copytree(engine_dir, hostile)
    data = bytearray((hostile / "encoder.onnx").read_bytes())
    data[len(data) // 2] ^= 0x10
    (hostile / "encoder.onnx").write_bytes(bytes(data))
    with pytest.raises(ManifestError, match="encoder.onnx.*sha256"):
        SamRuntime.load(hostile, backend="onnxruntime")
    onnx.load(str(engine_dir / "encoder.onnx"))  # the original is untouched and valid
