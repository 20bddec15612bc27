"""Corrupt checkpoints raise CheckpointError (or another samrt.errors type), never anything
else: the issue's /etc/passwd and /dev/zero cases through the CLI, and fuzz harnesses over Meta
.pth bytes, safetensors bytes and HF config.json values. SAMRT_FUZZ_EXAMPLES raises the example
count for a longer run."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from samrt.errors import CheckpointError, SamError

from samexport.checkpoints.naming import hf_to_meta
from samexport.checkpoints.random_weights import random_model
from samexport.cli import main
from samexport.config import preset
from samexport.modeling.sam import SamModel

FUZZ_EXAMPLES = int(os.environ.get("SAMRT_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz_sources")
    model = random_model(preset("tiny"), seed=3)
    torch.save(hf_to_meta(model.state_dict()), root / "sam.pth")
    model.save_pretrained(root / "hf")
    return {"pth": (root / "sam.pth").read_bytes(), "hf": root / "hf"}


@pytest.mark.parametrize("args", [
    ["export", "--model", "/etc/passwd", "--out", "OUT"],
    ["export", "--model", "/dev/zero", "--out", "OUT"],
    ["report", "ENGINE", "--reference", "/etc/passwd", "--out", "OUT"],
    ["build", "ENGINE", "--precision", "fp32", "--target", "onnxruntime", "--reference", "/etc/passwd",
     "--out", "OUT"],
])
def test_corrupt_checkpoints_are_one_sentence(random_tiny_engine, tmp_path, args):
    args = [str(tmp_path / "out") if a == "OUT" else str(random_tiny_engine) if a == "ENGINE" else a for a in args]
    result = CliRunner().invoke(main, args)
    expected = 2 if args[0] == "report" else 1
    assert result.exit_code == expected, result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output, result.output
    if "/dev/zero" in args:
        assert "not a regular file" in result.output


def _mutated(data: bytes, draw) -> bytes:
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "zero"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif data:
            data[at:at + 64] = bytes(min(64, len(data) - at))
    return bytes(data)


def _hf_copy(sources, tmp_path):
    """The HF directory copied once per test (hypothesis's examples share ``tmp_path``)."""
    target = tmp_path / "hf"
    if not target.exists():
        shutil.copytree(sources["hf"], target)
    return target


def _only_typed(call):
    try:
        call()
    except SamError:
        pass


@FUZZ
@given(data=st.data())
def test_fuzzed_meta_checkpoints(sources, tmp_path, data):
    path = tmp_path / "fuzzed.pth"
    path.write_bytes(_mutated(sources["pth"], data.draw))
    _only_typed(lambda: SamModel.from_pretrained(path))


@FUZZ
@given(data=st.data())
def test_fuzzed_safetensors(sources, tmp_path, data):
    target = _hf_copy(sources, tmp_path)
    original = (sources["hf"] / "model.safetensors").read_bytes()
    # the header (first 8 bytes + JSON) is where a parser can go wrong; mutate near it more often
    head = data.draw(st.integers(8, 8 + int.from_bytes(original[:8], "little")))
    mutated = _mutated(original[:head], data.draw) + original[head:]
    (target / "model.safetensors").write_bytes(mutated)
    _only_typed(lambda: SamModel.from_pretrained(target))


json_scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats() | st.text(max_size=6)


@FUZZ
@given(data=st.data())
def test_fuzzed_hf_configs(sources, tmp_path, data):
    target = _hf_copy(sources, tmp_path)
    config = json.loads((sources["hf"] / "config.json").read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        section = data.draw(st.sampled_from([k for k, v in config.items() if isinstance(v, dict)] + [None]))
        holder = config if section is None else config[section]
        key = data.draw(st.sampled_from(sorted(holder)))
        holder[key] = data.draw(json_scalars | st.lists(json_scalars, max_size=3))
    (target / "config.json").write_text(json.dumps(config))
    _only_typed(lambda: SamModel.from_pretrained(target))


def test_checkpoint_error_is_what_a_truncated_file_gives(sources, tmp_path):
    path = tmp_path / "half.pth"
    path.write_bytes(sources["pth"][: len(sources["pth"]) // 2])
    with pytest.raises(CheckpointError, match="half.pth"):
        SamModel.from_pretrained(path)
