"""samrt.engine_manifest: every manifest samexport writes, and those an earlier release wrote,
read into the typed EngineManifest and back without loss."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from samrt import SamRuntime
from samrt.engine_manifest import DEFAULT_PRECISION, EngineManifest
from samrt.errors import ManifestError
from samrt.manifest import artifact_record, load_manifest, read_manifest, write_manifest
from samrt.manifest_checks import check_structure

# Written by samexport at commit e9ff3a5 (`samexport export --model random:tiny`, then `build
# --precision int8` and `build --precision fp16 --emulate`, each with --check-prompts 1): before
# the manifest recorded int8 term counts.
PREVIOUS = Path(__file__).parent / "data" / "manifests_e9ff3a5"


@pytest.mark.parametrize("name", ["tiny", "tiny-int8", "tiny-fp16"])
def test_previous_release_manifests_read_and_round_trip(name):
    raw = json.loads((PREVIOUS / f"{name}.json").read_text())
    check_structure(raw, name)
    manifest = EngineManifest.from_dict(raw)
    assert manifest.to_dict() == raw
    assert manifest.model.source == "random:tiny"
    assert manifest.graph_files() == {"encoder": "encoder.onnx", "decoder": "decoder.onnx"}
    if name == "tiny-int8":
        assert manifest.precision == "int8" and manifest.build.int8_terms is None
        assert manifest.int8_terms == 2  # built before the count was recorded: two terms, as it was
    if name == "tiny-fp16":
        assert manifest.emulation is True and manifest.precision_policy.name
        assert manifest.accuracy.passed and manifest.accuracy.prompts > 0


@pytest.mark.parametrize("name", ["tiny", "tiny-int8", "tiny-fp16"])
def test_previous_release_manifests_load_a_runtime(name, random_tiny_engine, tmp_path):
    """Today's graphs under the old manifest (artefact records updated to them): the old field
    layout goes through the whole load path."""
    directory = tmp_path / name
    shutil.copytree(random_tiny_engine, directory)
    raw = json.loads((PREVIOUS / f"{name}.json").read_text())
    raw["artifacts"] = {p.name: artifact_record(p) for p in sorted(directory.iterdir())
                        if p.is_file() and p.name != "manifest.json"}
    write_manifest(directory, raw)
    runtime = SamRuntime.load(directory, backend="onnxruntime")
    assert runtime.manifest.precision == raw["precision"]
    assert runtime.image_size == raw["preprocessing"]["image_size"]


def test_written_manifests_round_trip(random_tiny_engine):
    raw = load_manifest(random_tiny_engine)
    typed = read_manifest(random_tiny_engine)
    assert typed.to_dict() == raw
    assert EngineManifest.from_dict(typed.to_dict()) == typed


def test_defaults_live_in_one_place():
    raw = json.loads((PREVIOUS / "tiny.json").read_text())
    del raw["precision"]
    assert EngineManifest.from_dict(raw).precision == DEFAULT_PRECISION == "fp32"


def test_unknown_keys_are_kept(random_tiny_engine):
    raw = load_manifest(random_tiny_engine)
    raw["written_by_a_later_release"] = {"x": 1}
    raw["model"]["note"] = "kept"
    typed = EngineManifest.from_dict(raw)
    assert typed.extra == {"written_by_a_later_release": {"x": 1}}
    assert typed.to_dict() == raw


def test_an_unusable_tensorrt_record_is_a_manifest_error(random_tiny_engine):
    raw = load_manifest(random_tiny_engine)
    raw["tensorrt"] = {"version": "10.3.0"}
    with pytest.raises(ManifestError, match="lacks"):
        EngineManifest.from_dict(raw, path="manifest.json")
    raw["tensorrt"] = {"version": "10.3.0", "gpu": "g", "compute_capability": "9.0", "engines": {},
                       "profiles": {"decoder": [{"input_points": {"min": [2], "opt": [1], "max": [1]}}]}}
    with pytest.raises(ManifestError, match="manifest.json"):
        EngineManifest.from_dict(raw, path="manifest.json")
