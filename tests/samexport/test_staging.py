"""--out never removes what samexport did not write: refusals, --overwrite, overlap, atomicity,
permissions. The command-line cases are the issue's reproductions, run through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import stat

import pytest
from click.testing import CliRunner
from samrt.errors import OutputError

from samexport.cli import main
from samexport.staging import check_no_overlap, check_replaceable, staged_directory


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def _fake_engine(path, extra=()):
    path.mkdir(parents=True)
    (path / "encoder.onnx").write_bytes(b"e")
    manifest = {"schema_version": 1, "graphs": {}, "artifacts": {"encoder.onnx": {}}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    for name in extra:
        (path / name).write_text("user data")
    return path


def test_user_directory_is_refused_and_untouched(tmp_path):
    user = tmp_path / "d"
    (user / "photos").mkdir(parents=True)
    (user / "thesis.txt").write_text("x")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="not an engine directory"), \
                staged_directory(user, overwrite=overwrite) as staging:
            (staging / "encoder.onnx").write_bytes(b"never published")
    assert _tree(user) == ["photos", "thesis.txt"]
    assert (user / "thesis.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no staging left beside it


def test_engine_directory_needs_overwrite_and_is_swapped(tmp_path):
    engine = _fake_engine(tmp_path / "eng")
    with pytest.raises(OutputError, match="--overwrite"):
        with staged_directory(engine):
            pass
    assert _tree(engine) == ["encoder.onnx", "manifest.json"]
    with staged_directory(engine, overwrite=True) as staging:
        (staging / "decoder.onnx").write_bytes(b"new")
    assert _tree(engine) == ["decoder.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eng"]  # the old one was removed


def test_engine_directory_with_user_files_is_refused_even_with_overwrite(tmp_path):
    engine = _fake_engine(tmp_path / "eng", extra=["notes.txt"])
    with pytest.raises(OutputError, match="notes.txt"):
        check_replaceable(engine, overwrite=True)
    (engine / "notes.txt").unlink()
    (engine / "sub").mkdir()
    with pytest.raises(OutputError, match="sub"):
        check_replaceable(engine, overwrite=True)


@pytest.mark.parametrize("kind", ["file", "symlink", "bad-manifest"])
def test_other_outputs_are_refused(tmp_path, kind):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("x")
    elif kind == "symlink":
        _fake_engine(tmp_path / "real")
        out.symlink_to(tmp_path / "real")
    else:
        out.mkdir()
        (out / "manifest.json").write_text("[1, 2]")
    with pytest.raises(OutputError):
        check_replaceable(out, overwrite=True)


def test_empty_directory_is_used(tmp_path):
    (tmp_path / "empty").mkdir()
    with staged_directory(tmp_path / "empty") as staging:
        (staging / "a").write_text("1")
    assert _tree(tmp_path / "empty") == ["a"]


def test_failure_keeps_the_old_engine(tmp_path):
    engine = _fake_engine(tmp_path / "eng")
    with pytest.raises(RuntimeError), staged_directory(engine, overwrite=True) as staging:
        (staging / "decoder.onnx").write_bytes(b"half")
        raise RuntimeError("export failed")
    assert _tree(engine) == ["encoder.onnx", "manifest.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eng"]


def test_contents_changed_during_the_work_are_refused_at_the_swap(tmp_path):
    engine = _fake_engine(tmp_path / "eng")
    with pytest.raises(OutputError, match="late.txt"), staged_directory(engine, overwrite=True):
        (engine / "late.txt").write_text("written by the user meanwhile")
    assert (engine / "late.txt").read_text() == "written by the user meanwhile"


@pytest.mark.parametrize("relation", ["same", "inside", "containing"])
def test_overlap_with_an_input_is_refused(tmp_path, relation):
    source = tmp_path / "proj" / "eng"
    source.mkdir(parents=True)
    out = {"same": source, "inside": source / "sub", "containing": tmp_path / "proj"}[relation]
    with pytest.raises(OutputError, match="overlaps"):
        check_no_overlap(out, [source])
    check_no_overlap(tmp_path / "elsewhere", [source, "random:tiny"])


def test_staged_directory_follows_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        with staged_directory(tmp_path / "eng") as staging:
            (staging / "a").write_text("1")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "eng").stat().st_mode) == 0o755


# -- the reproductions through the command line -----------------------------------------
def test_export_into_a_user_directory_refuses(tmp_path):
    user = tmp_path / "d"
    (user / "photos").mkdir(parents=True)
    (user / "thesis.txt").write_text("x")
    result = CliRunner().invoke(main, ["export", "--model", "random:tiny", "--out", str(user)])
    assert result.exit_code == 1, result.output
    assert result.output.count("error:") == 1 and "not an engine directory" in result.output
    assert _tree(user) == ["photos", "thesis.txt"]


def test_export_into_the_working_directory_refuses(tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["export", "--model", "random:tiny", "--out", "."])
    assert result.exit_code == 1, result.output
    assert _tree(tmp_path) == ["keep.txt"]


def test_build_over_its_source_parent_refuses(random_tiny_engine, tmp_path):
    proj = tmp_path / "proj"
    shutil.copytree(random_tiny_engine, proj / "eng")
    (proj / "notes.txt").write_text("mine")
    before = _tree(proj)
    result = CliRunner().invoke(main, ["build", str(proj / "eng"), "--precision", "fp32", "--target", "onnxruntime",
                                       "--check-prompts", "0", "--out", str(proj)])
    assert result.exit_code == 1 and "overlaps" in result.output, result.output
    assert _tree(proj) == before


def test_build_replaces_its_own_output_only_with_overwrite(random_tiny_engine, tmp_path):
    args = ["build", str(random_tiny_engine), "--precision", "fp32", "--target", "onnxruntime",
            "--check-prompts", "0", "--out", str(tmp_path / "copy")]
    runner = CliRunner()
    assert runner.invoke(main, args).exit_code == 0
    first = json.loads((tmp_path / "copy" / "manifest.json").read_text())["created"]
    again = runner.invoke(main, args)
    assert again.exit_code == 1 and "--overwrite" in again.output, again.output
    replaced = runner.invoke(main, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert json.loads((tmp_path / "copy" / "manifest.json").read_text())["created"] >= first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]
