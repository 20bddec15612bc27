"""Every command, given missing files, an output it cannot write, or a Ctrl-C: one sentence on
stderr, a non-zero exit, no traceback, and no half-written output that looks valid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import samexport.build as build_module
from samexport.cli import main


def _one_sentence(result, code=1):
    """``code`` 1 (or the report's 2 for bad arguments); click's own usage errors also exit 2."""
    assert result.exit_code == code or (code == 1 and result.exit_code == 2), result.output
    assert result.output.lower().count("error:") == 1, result.output
    assert "Traceback" not in result.output
    return result.output


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(path)
    return path


def test_unwritable_outputs(random_tiny_engine, photo, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = str(blocker / "sub")  # cannot be created: its parent is a file (works as root too)
    runner = CliRunner()
    commands = {
        "export": ["export", "--model", "random:tiny", "--out", out],
        "build": ["build", str(random_tiny_engine), "--precision", "fp32", "--target", "onnxruntime",
                  "--check-prompts", "0", "--out", out],
        "segment": ["segment", str(random_tiny_engine), str(photo), "--point", "10,10", "--out", out],
        "report": ["report", str(random_tiny_engine), "--images", str(photo), "--prompts", "1", "--worst", "0",
                   "--out", out],
        "bench": ["bench", str(random_tiny_engine), "--encoder-runs", "1", "--decoder-runs", "1", "--out", out],
    }
    for name, args in commands.items():
        output = _one_sentence(runner.invoke(main, args), code=2 if name == "report" else 1)
        assert "a-file" in output, (name, output)
    assert blocker.read_text() == "not a directory"


def test_missing_inputs(tmp_path, photo):
    runner = CliRunner()
    missing = str(tmp_path / "missing")
    for args in (["build", missing, "--precision", "int8"], ["report", missing],
                 ["bench", missing], ["segment", missing, str(photo), "--point", "1,1"]):
        assert "missing" in _one_sentence(runner.invoke(main, args))


def test_interrupted_build_is_one_sentence(random_tiny_engine, tmp_path, monkeypatch):
    def interrupted(source, target, **_):
        target.write_bytes(b"half a graph")
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "quantize_int8", interrupted)
    result = CliRunner().invoke(main, ["build", str(random_tiny_engine), "--precision", "int8",
                                       "--out", str(tmp_path / "out")])
    assert "interrupted" in _one_sentence(result, code=130)
    assert list(tmp_path.iterdir()) == []


def _signal_during_export(tmp_path, module, signum):
    """Start an export, wait until the encoder export is under way (torch's exporter catches
    BaseException while it tries its strategies, the classic place for a signal to be swallowed),
    send ``signum``; returns (exit status, stderr, the output path)."""
    out = tmp_path / "engines" / "tiny"
    process = subprocess.Popen([sys.executable, "-m", module, "export", "--model", "random:tiny",
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    started = ""
    while time.monotonic() < deadline and "exporting the image encoder" not in started:
        started += process.stdout.readline()
    time.sleep(1.0)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr, out


def test_ctrl_c_during_export_leaves_nothing(tmp_path):
    code, stderr, out = _signal_during_export(tmp_path, "samexport.cli", signal.SIGINT)
    assert code == 130, stderr
    assert stderr.count("error:") == 1 and "interrupted" in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert not list(out.parent.iterdir()) if out.parent.exists() else True


def test_sigterm_during_export_leaves_nothing(tmp_path):
    code, stderr, out = _signal_during_export(tmp_path, "samexport.console", signal.SIGTERM)
    assert code == 143, stderr
    assert stderr.count("error:") == 1 and "SIGTERM" in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert list(out.parent.iterdir()) == []  # no hidden .tiny.partial-* left behind


@pytest.mark.parametrize("delay", [0.15, 0.4, 0.8])
def test_ctrl_c_while_the_command_line_starts_is_one_sentence(tmp_path, delay):
    process = subprocess.Popen([sys.executable, "-m", "samexport.console", "export", "--model", "random:tiny",
                                "--out", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.count("error:") == 1 and "interrupted" in stderr and "Traceback" not in stderr, stderr
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_during_imports_is_one_sentence(monkeypatch, capsys):
    """Deterministic twin of the test above: the KeyboardInterrupt lands inside the import of
    the command line itself."""
    import importlib.abc

    from samexport import console

    class Interrupting(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "samexport.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "samexport.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exit_info:
            console.run()
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "interrupted" in err
