"""The samexport command line: the README's main job end to end, and clean failures."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from samexport.cli import main


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
    assert len(report["objects"]) == 1
    mask = np.asarray(Image.open(out / report["objects"][0]["mask"]))
    assert mask.shape == (240, 320)
    assert mask.sum() // 255 == report["objects"][0]["area"]
    assert Image.open(out / "overlay.png").size == (320, 240)


def test_errors_are_one_sentence_without_traceback(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["segment", str(tmp_path / "nope"), str(tmp_path / "x.png"), "--point", "1,1"])
    assert missing.exit_code == 1
    assert "error:" in missing.output and "Traceback" not in missing.output
    bad_point = runner.invoke(main, ["segment", str(tmp_path), "x.png", "--point", "1;1"])
    assert bad_point.exit_code == 2 and "x,y" in bad_point.output
    bad_model = runner.invoke(main, ["export", "--model", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "e")])
    assert bad_model.exit_code == 1 and "no such" in bad_model.output
    assert not (tmp_path / "e").exists()
