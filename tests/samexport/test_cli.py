"""The samexport command line: the README's main job end to end, and clean failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from samexport.cli import main

mask_utils = pytest.importorskip("pycocotools.mask")


def test_export_then_segment_writes_masks(tmp_path):
    runner = CliRunner()
    engine = tmp_path / "engines" / "tiny"
    result = runner.invoke(main, ["export", "--model", "random:tiny", "--out", str(engine)])
    assert result.exit_code == 0, result.output
    assert (engine / "manifest.json").is_file()
    assert not [p for p in engine.parent.iterdir() if ".partial-" in p.name]
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "out"
    result = runner.invoke(main, ["segment", str(engine), str(image), "--point", "100,80", "--point", "10,10:0",
                                  "--box", "20,20,200,180", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "masks.json").read_text())
    assert len(report["masks"]) == 1
    record = report["masks"][0]
    mask = np.asarray(Image.open(out / record["mask"])) > 0
    assert mask.shape == (240, 320)
    assert mask.sum() == record["area"]
    np.testing.assert_array_equal(mask_utils.decode(record["segmentation"]).astype(bool), mask)
    assert Image.open(out / "overlay.png").size == (320, 240)
    assert "random weights" in result.output and "meaningless" in result.output

    auto = tmp_path / "auto"
    result = runner.invoke(main, ["segment", str(engine), str(image), "--auto", "--points-per-side", "4",
                                  "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--out", str(auto)])
    assert result.exit_code == 0, result.output
    records = json.loads((auto / "masks.json").read_text())["masks"]
    assert records and {"bbox", "area", "predicted_iou", "stability_score", "point_coords", "crop_box",
                        "segmentation"} <= set(records[0])
    for record in records:
        decoded = mask_utils.decode(record["segmentation"]).astype(bool)
        np.testing.assert_array_equal(np.asarray(Image.open(auto / record["mask"])) > 0, decoded)
    defaults = runner.invoke(main, ["segment", str(engine), str(image), "--auto", "--points-per-side", "2",
                                    "--out", str(tmp_path / "none")])
    assert defaults.exit_code == 0 and "no mask passed" in defaults.output


def test_errors_are_one_sentence_without_traceback(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["segment", str(tmp_path / "nope"), str(tmp_path / "x.png"), "--point", "1,1"])
    assert missing.exit_code == 1
    assert "error:" in missing.output and "Traceback" not in missing.output
    bad_point = runner.invoke(main, ["segment", str(tmp_path), "x.png", "--point", "1;1"])
    assert bad_point.exit_code == 2 and "x,y" in bad_point.output
    both = runner.invoke(main, ["segment", str(tmp_path), "x.png", "--point", "1,1", "--auto"])
    assert both.exit_code == 1 and "--auto" in both.output and "Traceback" not in both.output
    bad_model = runner.invoke(main, ["export", "--model", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "e")])
    assert bad_model.exit_code == 1 and "no such" in bad_model.output
    assert not (tmp_path / "e").exists()


def test_inspect_verifies_and_describes(random_tiny_engine, tmp_path):
    import shutil

    from samrt.manifest import load_manifest, write_manifest

    runner = CliRunner()
    result = runner.invoke(main, ["inspect", str(random_tiny_engine)])
    assert result.exit_code == 0, result.output
    assert "verified (2 artefacts" in result.output and "random:tiny" in result.output
    assert "no engines (onnxruntime only)" in result.output

    copy = tmp_path / "copy"
    shutil.copytree(random_tiny_engine, copy)
    manifest = load_manifest(copy)
    manifest["tensorrt"] = {"version": "10.3.0", "gpu": "NVIDIA L4", "compute_capability": "8.9",
                            "precision": "fp16", "engines": {}, "profiles": {}}
    write_manifest(copy, manifest)
    result = runner.invoke(main, ["inspect", str(copy)])
    assert result.exit_code == 0, result.output
    assert "TensorRT 10.3.0, NVIDIA L4 (compute capability 8.9)" in result.output
    assert "cannot run the TensorRT engines" in result.output  # no TensorRT on this machine

    (copy / "decoder.onnx").write_bytes(b"edited")
    result = runner.invoke(main, ["inspect", str(copy)])
    assert result.exit_code == 1 and "decoder.onnx" in result.output and "Traceback" not in result.output
