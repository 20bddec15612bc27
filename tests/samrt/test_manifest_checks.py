"""Every malformed manifest is a ManifestError naming the file and the field; swapped graphs and
unreadable files are named too; a fuzz harness mutates real manifests and lets only typed
errors through. SAMRT_FUZZ_EXAMPLES raises the example count for a longer run."""

from __future__ import annotations

import copy
import json
import os
import shutil

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samrt import SamRuntime
from samrt.errors import ManifestError, SamError
from samrt.manifest import artifact_record, load_manifest, read_manifest, write_manifest

from samexport.cli import main

FUZZ_EXAMPLES = int(os.environ.get("SAMRT_FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def manifest(random_tiny_engine):
    return json.loads((random_tiny_engine / "manifest.json").read_text())


@pytest.fixture()
def engine(random_tiny_engine, tmp_path):
    target = tmp_path / "eng"
    shutil.copytree(random_tiny_engine, target)
    return target


def _write(directory, manifest):
    (directory / "manifest.json").write_text(json.dumps(manifest))


def _deep(depth):
    value = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def _set(manifest, dotted, value):
    *parents, last = dotted.split(".")
    target = manifest
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value


_DELETE = object()
CASES = {
    "missing preprocessing": ("preprocessing", _DELETE, "preprocessing"),
    "graphs a list": ("graphs", [], "graphs"),
    "image_size text": ("preprocessing.image_size", "abc", "preprocessing.image_size"),
    "image_size huge": ("preprocessing.image_size", 1e12, "preprocessing.image_size"),
    "mask_size huge": ("preprocessing.mask_size", 1e6, "preprocessing.mask_size"),
    "std text": ("preprocessing.image_std", "abc", "preprocessing.image_std"),
    "std zero": ("preprocessing.image_std", [0, 1, 1], "preprocessing.image_std[0]"),
    "build text": ("build", "x", "build"),
    "int8 terms": ("build", {"int8_terms": 3}, "build.int8_terms"),
    "precision": ("precision", "fp64", "precision"),
    "model missing": ("model", _DELETE, "model"),
    "source number": ("model.source", 5, "model.source"),
    "decoder missing": ("graphs.decoder", _DELETE, "graphs.decoder"),
    "decoder inputs": ("graphs.decoder.inputs", [{"name": "pixel_values", "dtype": "float32", "shape": [1]}],
                       "graphs.decoder.inputs"),
    "opset": ("graphs.encoder.opset", "20", "graphs.encoder.opset"),
    "accuracy": ("accuracy", {"passed": "yes"}, "accuracy.passed"),
    "policy": ("precision_policy", {"note": "x"}, "precision_policy.name"),
    "emulation": ("emulation", "no", "emulation"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_field_is_named(engine, manifest, case):
    dotted, value, field = CASES[case]
    broken = copy.deepcopy(manifest)
    _set(broken, dotted, value)
    _write(engine, broken)
    with pytest.raises(ManifestError) as info:
        load_manifest(engine)
    assert str(engine / "manifest.json") in str(info.value)
    assert field in str(info.value)


def test_nul_byte_in_an_artefact_name(engine, manifest):
    broken = copy.deepcopy(manifest)
    broken["artifacts"]["enc\x00oder.onnx"] = broken["artifacts"].pop("encoder.onnx")
    _write(engine, broken)
    with pytest.raises(ManifestError, match="NUL"):
        load_manifest(engine)


def test_deeply_nested_json(engine, manifest):
    (engine / "manifest.json").write_text('{"schema_version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ManifestError, match="nested too deeply|unreadable"):
        load_manifest(engine)
    broken = copy.deepcopy(manifest)
    broken["verification"] = _deep(50)
    _write(engine, broken)
    load_manifest(engine)  # deep but within reason: accepted


@pytest.mark.parametrize("case", ["missing preprocessing", "build text", "graphs a list"])
def test_inspect_says_so_in_one_sentence(engine, manifest, case):
    dotted, value, field = CASES[case]
    broken = copy.deepcopy(manifest)
    _set(broken, dotted, value)
    _write(engine, broken)
    result = CliRunner().invoke(main, ["inspect", str(engine)])
    assert result.exit_code == 1, result.output
    assert result.output.count("error:") == 1 and field in result.output and "Traceback" not in result.output
    assert "verified" not in result.output


def test_swapped_graph_is_named_at_load(engine):
    shutil.copy2(engine / "encoder.onnx", engine / "decoder.onnx")
    manifest = json.loads((engine / "manifest.json").read_text())
    manifest["artifacts"]["decoder.onnx"] = artifact_record(engine / "decoder.onnx")
    write_manifest(engine, manifest)
    load_manifest(engine)  # the hashes agree: only the graph's own inputs can tell
    with pytest.raises(ManifestError, match="decoder.onnx.*not a decoder graph"):
        SamRuntime.load(engine)


def test_unreadable_artefact_is_a_manifest_error(engine, monkeypatch):
    import samrt.manifest as manifest_module

    def denied(path, chunk=1 << 20):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(manifest_module, "sha256_file", denied)
    with pytest.raises(ManifestError, match="Permission denied"):
        load_manifest(engine)
    result = CliRunner().invoke(main, ["inspect", str(engine)])
    assert result.exit_code == 1 and "Permission denied" in result.output and "Traceback" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; the monkeypatched "
                                               "test above covers the error path")
def test_chmod_000_artefact_is_a_manifest_error(engine):
    (engine / "encoder.onnx").chmod(0)
    try:
        with pytest.raises(ManifestError, match="encoder.onnx"):
            load_manifest(engine)
    finally:
        (engine / "encoder.onnx").chmod(0o644)


# -- fuzz ----------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*prefix, i))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_manifests_raise_only_typed_errors(engine, manifest, data):
    broken = copy.deepcopy(manifest)
    paths = [p for p in _paths(broken) if p]
    for _ in range(data.draw(st.integers(1, 4))):
        path = data.draw(st.sampled_from(paths))
        parent = broken
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = data.draw(json_values)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    text = json.dumps(broken) if data.draw(st.booleans()) else json.dumps(broken)[:data.draw(st.integers(0, 400))]
    (engine / "manifest.json").write_text(text)
    try:
        read_manifest(engine)  # verified, then typed: every reader reads the typed form
    except SamError:
        return
    result = CliRunner().invoke(main, ["inspect", str(engine)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
