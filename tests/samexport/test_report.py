"""``samexport report``: metrics against independent implementations, thresholds, the end-to-end
report on a tiny engine, a caught injected fault, the HTML in headless Chromium, and errors."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from PIL import Image
from samrt.errors import InvalidInputError
from samrt.manifest import artifact_record, write_manifest

from samexport.cli import main
from samexport.report.metrics import boundary_f_score, distribution, mask_iou, tensor_errors
from samexport.report.prompts import PROMPT_KINDS, sample_prompts
from samexport.report.thresholds import DEFAULTS, thresholds_for

ndimage = pytest.importorskip("scipy.ndimage")


# -- metrics ------------------------------------------------------------------------------------
def test_tensor_errors_match_numpy():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(3, 50, 40)).astype(np.float32)
    cand = ref + rng.normal(scale=1e-3, size=ref.shape).astype(np.float32)
    stats = tensor_errors(ref, cand)
    diff = np.abs(cand.astype(np.float64) - ref)
    assert stats["max_abs"] == pytest.approx(diff.max(), rel=1e-5)
    assert stats["mean_abs"] == pytest.approx(diff.mean(), rel=1e-4)
    assert stats["p99_abs"] == pytest.approx(np.quantile(diff, 0.99), rel=1e-3)
    r64, c64 = ref.astype(np.float64).ravel(), cand.astype(np.float64).ravel()
    cos = (r64 @ c64) / np.linalg.norm(r64) / np.linalg.norm(c64)
    assert stats["cosine"] == pytest.approx(cos, abs=1e-9)
    assert stats["nonfinite"] == 0
    cand[0, 0, :3] = [np.nan, np.inf, -np.inf]
    broken = tensor_errors(ref, cand)
    assert broken["nonfinite"] == 3 and broken["max_abs"] == np.inf


def _boundary_oracle(mask):
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(2, 1), border_value=0)


def _f_oracle(ref, cand, tol):
    rb, cb = _boundary_oracle(ref), _boundary_oracle(cand)
    square = np.ones((2 * tol + 1, 2 * tol + 1), bool)
    precision = (cb & ndimage.binary_dilation(rb, structure=square)).sum() / cb.sum()
    recall = (rb & ndimage.binary_dilation(cb, structure=square)).sum() / rb.sum()
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("seed", range(6))
def test_boundary_f_and_iou_match_scipy_oracles(seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:90, :120]
    ref = (yy - 45) ** 2 / 30**2 + (xx - 60) ** 2 / 40**2 < 1
    cand = np.roll(ref, rng.integers(-4, 5, 2), axis=(0, 1)) ^ (rng.random(ref.shape) < 0.01)
    for tol in (1, 2, 3):
        assert boundary_f_score(ref, cand, tolerance=tol) == pytest.approx(_f_oracle(ref, cand, tol), abs=1e-12)
    assert float(mask_iou(ref, cand)) == pytest.approx((ref & cand).sum() / (ref | cand).sum())
    assert boundary_f_score(ref, ref) == 1.0
    assert boundary_f_score(np.zeros_like(ref), np.zeros_like(ref)) == 1.0
    assert boundary_f_score(ref, np.zeros_like(ref)) == 0.0


def test_distribution_counts_nan_as_failure():
    d = distribution([1.0, 0.5, np.nan, 1.0])
    assert d["min"] == 0.0 and d["count"] == 4 and d["mean"] == pytest.approx(0.625)


# -- prompts and thresholds -------------------------------------------------------------------
def test_prompts_are_deterministic_and_inside_the_image():
    a, b = sample_prompts(300, 200, count=5, seed=3), sample_prompts(300, 200, count=5, seed=3)
    assert [p.kind for p in a] == list(PROMPT_KINDS)
    for x, y in zip(a, b, strict=True):
        for field in ("points", "labels", "boxes"):
            u, v = getattr(x, field), getattr(y, field)
            assert (u is None and v is None) or (u == v).all()
        assert x.count == 5
        if x.points is not None:
            assert (x.points >= 0).all() and (x.points[..., 0] <= 200).all() and (x.points[..., 1] <= 300).all()
        if x.boxes is not None:
            assert (x.boxes[:, 2] > x.boxes[:, 0]).all() and (x.boxes[:, 2] <= 200).all()
            assert (x.boxes[:, 3] <= 300).all()
    assert (a[1].labels == [1, 1, 0]).all() and a[4].refine


def test_thresholds_file_overrides_and_rejects_unknown_keys(tmp_path):
    good = tmp_path / "t.json"
    good.write_text(json.dumps({"mask_iou_p1_min": 0.5, "embeddings_max_abs_max": None}))
    chosen = thresholds_for("fp32", good)
    assert chosen["mask_iou_p1_min"] == 0.5 and chosen["embeddings_max_abs_max"] is None
    assert chosen["iou_scores_max_abs_max"] == DEFAULTS["fp32"]["iou_scores_max_abs_max"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mask_iou_p1_min": 0.5, "mask_iou_p2_min": 0.5, "speed": 1}))
    with pytest.raises(InvalidInputError, match="mask_iou_p2_min.*speed|speed.*mask_iou_p2_min"):
        thresholds_for("fp32", bad)
    bad.write_text(json.dumps({"mask_iou_p1_min": "high"}))
    with pytest.raises(InvalidInputError, match="a number or null"):
        thresholds_for("fp32", bad)
    with pytest.raises(InvalidInputError, match="precision"):
        thresholds_for("fp64")


# -- end to end -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_engine(random_tiny_engine):
    return random_tiny_engine


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    directory = tmp_path_factory.mktemp("photos")
    skimage_data = pytest.importorskip("skimage.data")
    Image.fromarray(skimage_data.astronaut()[::2, ::3]).save(directory / "astronaut.png")  # 256 x 171
    Image.fromarray(skimage_data.coffee()[:300, :120]).save(directory / "coffee.jpg")
    return directory


@pytest.fixture(scope="module")
def passing_report(tiny_engine, photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "report"
    result = CliRunner().invoke(main, ["report", str(tiny_engine), "--images", str(photos), "--prompts", "3",
                                       "--worst", "2", "--out", str(out)])
    return result, out


def test_fp32_engine_passes_and_the_report_is_complete(passing_report):
    result, out = passing_report
    assert result.exit_code == 0, result.output
    record = json.loads((out / "report.json").read_text())
    assert record["schema_version"] == 1 and record["passed"] is True
    entry = record["backends"]["onnxruntime"]
    assert entry["checks"] and all(c["passed"] for c in entry["checks"])
    assert {c["kind"] for c in entry["checks"]} == {"all", *PROMPT_KINDS}
    assert len(entry["prompts"]) == 2 * len(PROMPT_KINDS) * 3
    assert entry["all"]["mask_iou"]["min"] >= 0.95 and entry["all"]["low_res_logits"]["max_abs"] < 1e-3
    assert all(e["cosine"] > 0.99999 for e in entry["embeddings"])
    assert len(entry["worst_cases"]) == 2 and all((out / w["file"]).is_file() for w in entry["worst_cases"])
    assert "PASS" in (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 + 2  # two plots and two overlays


def _perturb_decoder(engine, rng):
    """Add noise to the hypernetwork MLPs' output layers (512 weights in tiny), re-hash."""
    path = engine / "decoder.onnx"
    model = onnx.load(str(path))
    touched = 0
    for init in model.graph.initializer:
        if "output_hypernetworks_mlps" in init.name and init.name.endswith("proj_out.weight"):
            arr = onnx.numpy_helper.to_array(init).copy()
            arr += rng.normal(scale=0.5, size=arr.shape).astype(arr.dtype)
            init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
            touched += arr.size
    assert touched, [i.name for i in model.graph.initializer]
    onnx.save(model, str(path))
    manifest = json.loads((engine / "manifest.json").read_text())
    manifest["artifacts"]["decoder.onnx"] = artifact_record(path)
    write_manifest(engine, manifest)


def test_an_injected_decoder_fault_fails_and_is_located(tiny_engine, photos, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_engine, broken)
    _perturb_decoder(broken, np.random.default_rng(0))
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", str(broken), "--images", str(photos), "--prompts", "3",
                                       "--worst", "2", "--out", str(out)])
    assert result.exit_code == 1, result.output
    record = json.loads((out / "report.json").read_text())
    entry = record["backends"]["onnxruntime"]
    failed = [c for c in entry["checks"] if not c["passed"]]
    assert {"masks", "low_res_logits"} <= {c["output"] for c in failed}
    assert {c["kind"] for c in failed} >= {"point", "box"}
    assert "FAILED masks" in result.output and "prompt kind" in result.output
    # the embeddings were not touched and the report says so
    assert all(c["passed"] for c in entry["checks"] if c["output"] == "image_embeddings")
    worst = entry["worst_cases"]
    assert worst[0]["mask_iou"] < 0.9 and (out / worst[0]["file"]).is_file()
    assert "FAIL" in (out / "report.md").read_text()


def _chromium():
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium not installed (Debian: apt install chromium)")
def test_html_renders_in_headless_chromium_with_plots_and_overlays(passing_report, tmp_path):
    _, out = passing_report
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1200,5000", (out / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)

    def count(colour, tol=12):
        return int((np.abs(pixels - colour).max(axis=-1) <= tol).sum())

    assert count((31, 119, 180)) > 2000, "plots (matplotlib blue bars / points) not rendered"
    assert count((0, 255, 0)) > 200, "reference overlay (green outline) not rendered"
    assert count((255, 0, 255)) > 200, "backend overlay (magenta outline) not rendered"


def test_bad_arguments_are_one_sentence_and_exit_2(tiny_engine, photos, tmp_path):
    runner = CliRunner()

    def run(*args):
        result = runner.invoke(main, ["report", *args, "--out", str(tmp_path / "r")])
        assert result.exit_code == 2, result.output
        assert result.output.count("error:") == 1 and "Traceback" not in result.output
        return result.output

    assert "engine directory not found" in run(str(tmp_path / "missing"))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    assert "--images" in run(str(tiny_engine), "--images", str(tmp_path / "broken.png"))
    assert "--backends" in run(str(tiny_engine), "--images", str(photos), "--backends", "onnxruntime,tvm")
    thresholds = tmp_path / "t.json"
    thresholds.write_text(json.dumps({"mask_iou_p1_minimum": 0.9}))
    assert "mask_iou_p1_minimum" in run(str(tiny_engine), "--images", str(photos), "--thresholds", str(thresholds))
