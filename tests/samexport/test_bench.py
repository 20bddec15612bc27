"""``samexport bench``: the record it writes, the comparison arithmetic, and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from samrt.backends.onnxruntime import decoder_row_workers
from samrt.engine_manifest import ModelSource
from samrt.errors import CheckpointError, InvalidInputError

from samexport.bench import BenchSettings, compare, synthetic_image
from samexport.checkpoints.sources import reference_for_engine
from samexport.cli import main
from samexport.timing import peak_rss_mb

FAST = ["--encoder-runs", "1", "--decoder-runs", "2", "--batch-prompts", "5"]
TIMED = ("encoder", "decoder_n1", "decoder_batch", "preprocess", "postprocess_3_masks", "predict_n1")


@pytest.fixture(scope="module")
def tiny_engine(random_tiny_engine):
    return random_tiny_engine


def test_bench_writes_the_record_with_the_transformers_comparison(tiny_engine, tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(main, ["bench", str(tiny_engine), "--compare-transformers", "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text())
    assert record["engine"] == {"name": "tiny", "source": "random:tiny", "precision": "fp32"}
    assert record["machine"]["cpu_count"] >= 1 and "onnxruntime" in record["machine"]["versions"]
    ours = record["samrt"]
    assert ours["backend"] == "onnxruntime"
    assert ours["decoder_workers"] == decoder_row_workers(["CPUExecutionProvider"])
    for key in TIMED:
        stats = ours[key]
        assert 0 < stats["min_ms"] <= stats["p50_ms"] <= stats["p90_ms"], key
    assert ours["encoder"]["runs"] == 1 and ours["decoder_n1"]["runs"] == 2
    assert ours["decoder_batch"]["prompts"] == 5
    assert ours["encoder_first_call_after_warmup_ms"] > 0 and ours["load_and_warmup_ms"] > 0
    rounds = ours["decoder_batch_vs_single_in_rounds"]
    assert len(rounds["per_prompt_ratio_per_round"]) == 5  # batch_runs, the default
    assert rounds["median"] == pytest.approx(float(np.median(rounds["per_prompt_ratio_per_round"])), abs=1e-3)
    assert 0 < ours["peak_rss_mb"] <= peak_rss_mb() + 0.1  # this process's peak so far: it only grows
    assert ours["decoder_batch"]["p50_ms_per_prompt"] == pytest.approx(ours["decoder_batch"]["p50_ms"] / 5, abs=1e-3)
    for attention in ("eager", "sdpa"):
        theirs = record["transformers"][attention]
        assert theirs["attn_implementation"] == attention
        assert theirs["decoder_batch"]["prompts"] == 5 and theirs["encoder"]["p50_ms"] > 0
        assert record["comparison"][f"vs_{attention}_attention"] == compare(ours, theirs)
    assert "encoder_time_ratio" in result.output


def test_compare_arithmetic():
    def stats(p50):
        return {"p50_ms": p50}

    ours = {"encoder": stats(5.0), "decoder_n1": stats(2.0),
            "decoder_batch": {"p50_ms": 64.0, "p50_ms_per_prompt": 1.0}}
    theirs = {"encoder": stats(20.0), "decoder_n1": stats(8.0),
              "decoder_batch": {"p50_ms": 256.0, "p50_ms_per_prompt": 4.0}}
    assert compare(ours, theirs) == {
        "encoder_time_ratio": 0.25, "decoder_n1_time_ratio": 0.25, "decoder_batch_throughput_gain": 4.0,
        "decoder_batch_per_prompt_vs_single": 0.5, "transformers_batch_vs_single": 32.0,
    }


def test_bench_errors_are_one_sentence(tmp_path, tiny_engine):
    runner = CliRunner()
    missing = runner.invoke(main, ["bench", str(tmp_path / "nope"), "--out", str(tmp_path / "x.json")])
    assert missing.exit_code == 1 and missing.output.startswith("error:") and "Traceback" not in missing.output
    bad_image = runner.invoke(main, ["bench", str(tiny_engine), "--image", str(tmp_path / "none.png"), *FAST])
    assert bad_image.exit_code == 1 and "--image" in bad_image.output
    zero = runner.invoke(main, ["bench", str(tiny_engine), "--encoder-runs", "0"])
    assert zero.exit_code == 2 and "encoder-runs" in zero.output


def test_settings_are_validated():
    with pytest.raises(InvalidInputError, match="batch_prompts"):
        BenchSettings(batch_prompts=0)
    with pytest.raises(InvalidInputError, match="warmup"):
        BenchSettings(warmup=-1)


def test_reference_must_be_the_exported_checkpoint(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path / "hf")
    exported_from = ModelSource(source="elsewhere", sha256="0" * 64)
    with pytest.raises(CheckpointError, match="sha256"):
        reference_for_engine(exported_from, str(tmp_path / "hf"))
    random_manifest = ModelSource(source="random:tiny", sha256=None)
    assert reference_for_engine(random_manifest).config.to_dict() == reference_for_engine(
        random_manifest, "random:tiny").config.to_dict()


def test_synthetic_image_is_deterministic_rgb():
    a, b = synthetic_image(30, 40), synthetic_image(30, 40)
    assert a.shape == (30, 40, 3) and a.dtype.name == "uint8" and (a == b).all() and a.std() > 10
