"""``samexport bench``: latency of an engine directory, optionally beside transformers' eager model.

What is timed (each function in its own block of calls, warm-up first; see ``samexport.timing``):

- ``encoder``: the encoder graph alone on one preprocessed [1, 3, S, S] image.
- ``decoder_n1`` / ``decoder_n64``: the decoder graph alone, one image embedding, N prompts of
  one point each (plus the padding point, as transformers adds), in one call.
- ``decoder_batch_vs_single_in_rounds``: the N-prompt call's time per prompt over the 1-prompt
  call's, taken round by round (a few single calls, then one batch call; ``batch_runs`` rounds),
  with the median of the rounds: the side-by-side figure for "a batch is no slower per prompt".
- ``preprocess``: ``SamProcessor.preprocess_image`` of the benchmark image.
- ``postprocess``: ``SamRuntime.predict``'s upscale + binarise of 3 masks to the image size
  (``predict_n1`` minus the decoder graph, measured directly).
- ``predict_n1``: one prompt end to end from an embedding (feeds, decoder, post-processing).
- ``load_and_warmup_ms``: ``SamRuntime.load(..., warmup=True)``: verifying, loading and one
  run of each graph (what starting a service costs).
- ``encoder_first_call_after_warmup_ms``: the encoder call right after that (what a freshly
  started service's first request pays).
- ``peak_rss_mb``: the process's peak resident memory after the engine's part (before any
  transformers model is loaded), where the platform reports it.

With ``compare_transformers`` the reference model is loaded into transformers' ``SamModel`` (fp32,
PyTorch eager mode, same weights), once with ``attn_implementation="eager"`` and once with
"sdpa" (its default), and its vision encoder and decoder (``image_embeddings`` given, point
batch 1 and 64) are timed the same way; the result then carries ratios (ours / theirs, lower is
better) and throughput gains (theirs / ours per prompt, higher is better).
"""

from __future__ import annotations

import datetime as _dt
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from samrt import SamRuntime
from samrt.checks import check_int
from samrt.errors import InvalidInputError
from samrt.manifest import read_manifest
from samrt.upscale import binarize_masks

from .timing import LatencyStats, describe_machine, measure, peak_rss_mb

SCHEMA_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    """How many calls to time. ``batch_prompts`` is the N of the batched decoder call."""

    encoder_runs: int = 5
    decoder_runs: int = 20
    batch_runs: int = 5
    warmup: int = 2
    batch_prompts: int = 64
    image_size: tuple[int, int] = (1500, 2250)  # (height, width) of the synthetic image

    def __post_init__(self) -> None:
        for name in ("encoder_runs", "decoder_runs", "batch_runs", "batch_prompts"):
            check_int(name, getattr(self, name), low=1)
        check_int("warmup", self.warmup, low=0)


def synthetic_image(height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """uint8 [H, W, 3]: smooth gradients plus a few discs (deterministic; no file needed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1), 0.5 + 0.0 * xx], axis=-1) * 180
    for _ in range(6):
        cy, cx = rng.random(2) * (height, width)
        radius = (0.05 + 0.15 * rng.random()) * min(height, width)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
        image[inside] = rng.integers(0, 256, 3)
    return image.astype(np.uint8)


def _point_feeds(runtime: Any, embedding: Any, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    h, w = embedding.original_size
    points = rng.random((n, 1, 2)) * (w, h)
    return runtime.decoder_feeds(embedding, points, np.ones((n, 1), np.int32), None, None)


def bench_engine(engine_dir: str | Path, *, settings: BenchSettings | None = None, backend: str = "auto",
                 image: Any = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time the engine's graphs and the runtime's processing. Returns the ``results`` mapping."""
    settings = settings or BenchSettings()
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    runtime = SamRuntime.load(engine_dir, backend=backend, warmup=True)
    load_ms = round((time.perf_counter() - started) * 1e3, 3)
    image = synthetic_image(*settings.image_size) if image is None else image
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {"backend": runtime.backend,
                               "providers": runtime.encoder.describe()["providers"],
                               # threads a CPU decoder call of several prompts shares them over
                               "decoder_workers": runtime.decoder.describe()["row_workers"],
                               "load_and_warmup_ms": load_ms}
    say("preprocessing")
    results["preprocess"] = measure(lambda: runtime.processor.preprocess_image(image),
                                    repeat=settings.decoder_runs, warmup=settings.warmup).to_dict()
    pixels, _, _ = runtime.processor.preprocess_image(image)

    def encode() -> None:
        runtime.encoder.infer({"pixel_values": pixels[None]})

    say("encoder")
    # What a service's first request pays after SamRuntime.load(warmup=True); measure() below
    # reports the steady state after its own warm-up.
    results["encoder_first_call_after_warmup_ms"] = measure(encode, repeat=1, warmup=0).p50_ms
    results["encoder"] = measure(encode, repeat=settings.encoder_runs, warmup=settings.warmup).to_dict()
    embedding = runtime.embed(image)
    say("decoder, 1 prompt")
    single = _point_feeds(runtime, embedding, 1, rng)

    def decode_single() -> None:
        runtime.decoder.infer(single)

    results["decoder_n1"] = measure(decode_single, repeat=settings.decoder_runs, warmup=settings.warmup).to_dict()
    say(f"decoder, {settings.batch_prompts} prompts in one call")
    batch = _point_feeds(runtime, embedding, settings.batch_prompts, rng)

    def decode_batch() -> None:
        runtime.decoder.infer(batch)

    stats = measure(decode_batch, repeat=settings.batch_runs, warmup=1)
    results["decoder_batch"] = {"prompts": settings.batch_prompts, **stats.to_dict(),
                                "p50_ms_per_prompt": round(stats.p50_ms / settings.batch_prompts, 3)}
    say(f"decoder, 1 prompt and {settings.batch_prompts} alternating ({settings.batch_runs} rounds)")
    # Side by side: the blocks above run minutes apart on a machine whose speed drifts, so the
    # batch-vs-single ratio is also taken round by round (each round: a few single calls, then
    # one batch) and reported as the median of the rounds' ratios.
    ratios = []
    for _ in range(settings.batch_runs):
        one = measure(decode_single, repeat=max(1, settings.decoder_runs // 4), warmup=1)
        many = measure(decode_batch, repeat=1, warmup=0)
        ratios.append(round(many.p50_ms / settings.batch_prompts / one.p50_ms, 3))
    results["decoder_batch_vs_single_in_rounds"] = {"per_prompt_ratio_per_round": ratios,
                                                    "median": round(float(np.median(ratios)), 3)}
    say("post-processing")
    low_res = runtime.decoder.infer(single)["low_res_masks"][:, 1:]
    sizes = (embedding.original_size, embedding.reshaped_input_size, (runtime.image_size, runtime.image_size))
    results["postprocess_3_masks"] = measure(lambda: binarize_masks(low_res, *sizes),
                                             repeat=settings.decoder_runs, warmup=settings.warmup).to_dict()
    height, width = embedding.original_size
    point = np.array([[width / 2, height / 2]], np.float32)
    results["predict_n1"] = measure(lambda: runtime.predict(embedding, points=point),
                                    repeat=settings.decoder_runs, warmup=settings.warmup).to_dict()
    runtime.close()
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return results


TRANSFORMERS_ATTENTION = ("eager", "sdpa")


def bench_transformers(model: Any, *, attention: str = "eager", settings: BenchSettings | None = None,
                       progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time transformers' ``SamModel`` in PyTorch eager mode (no compilation), loaded with ``model``'s
    weights, with ``attn_implementation=attention``: "eager" (explicit attention matrices, the
    classic baseline) or "sdpa" (``scaled_dot_product_attention``, transformers' default)."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise InvalidInputError("compare_transformers", True, "the transformers package (pip install "
                                "'samexport[dev]')") from exc
    settings = settings or BenchSettings()
    say = progress or (lambda _msg: None)
    transformers.utils.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as work:
        model.save_pretrained(work)
        hf = transformers.SamModel.from_pretrained(work, attn_implementation=attention).eval()
    size = model.config.vision_config.image_size
    pixels = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 3, size, size)).astype(np.float32))
    results: dict[str, Any] = {"attn_implementation": attention, "torch_threads": torch.get_num_threads()}
    with torch.inference_mode():
        say(f"transformers ({attention} attention): vision encoder")
        results["encoder"] = measure(lambda: hf.get_image_embeddings(pixels), repeat=settings.encoder_runs,
                                     warmup=1).to_dict()
        embeddings = hf.get_image_embeddings(pixels)

        def decoder(n: int) -> LatencyStats:
            points = torch.rand(1, n, 1, 2) * size
            labels = torch.ones(1, n, 1, dtype=torch.long)
            runs = settings.decoder_runs if n == 1 else settings.batch_runs
            return measure(lambda: hf(image_embeddings=embeddings, input_points=points, input_labels=labels),
                           repeat=runs, warmup=1)

        say(f"transformers ({attention} attention): decoder, 1 prompt")
        results["decoder_n1"] = decoder(1).to_dict()
        say(f"transformers ({attention} attention): decoder, point batch {settings.batch_prompts}")
        stats = decoder(settings.batch_prompts)
        results["decoder_batch"] = {"prompts": settings.batch_prompts, **stats.to_dict(),
                                    "p50_ms_per_prompt": round(stats.p50_ms / settings.batch_prompts, 3)}
    return results


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float]:
    """Ratios of p50 latencies (ours / transformers: < 1 is faster) and the batch throughput gain."""
    def ratio(key: str) -> float:
        return round(ours[key]["p50_ms"] / theirs[key]["p50_ms"], 3)

    batch, their_batch = ours["decoder_batch"], theirs["decoder_batch"]
    return {
        "encoder_time_ratio": ratio("encoder"),
        "decoder_n1_time_ratio": ratio("decoder_n1"),
        "decoder_batch_throughput_gain": round(their_batch["p50_ms"] / batch["p50_ms"], 3),
        "decoder_batch_per_prompt_vs_single": round(batch["p50_ms_per_prompt"] / ours["decoder_n1"]["p50_ms"], 3),
        "transformers_batch_vs_single": round(their_batch["p50_ms"] / theirs["decoder_n1"]["p50_ms"], 2),
    } | ({"decoder_batch_per_prompt_vs_single_in_rounds": ours["decoder_batch_vs_single_in_rounds"]["median"]}
         if "decoder_batch_vs_single_in_rounds" in ours else {})


def run_bench(engine_dir: str | Path, *, settings: BenchSettings | None = None, backend: str = "auto",
              reference: Any = None, image: Any = None,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The full record written by ``samexport bench``: machine, engine, results, comparison."""
    settings = settings or BenchSettings()
    manifest = read_manifest(Path(engine_dir))
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": describe_machine(),
        "engine": {"name": manifest.name, "source": manifest.model.source, "precision": manifest.precision},
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items()},
        "samrt": bench_engine(engine_dir, settings=settings, backend=backend, image=image, progress=progress),
    }
    if reference is not None:
        record["transformers"] = {}
        record["comparison"] = {}
        for attention in TRANSFORMERS_ATTENTION:
            theirs = bench_transformers(reference, attention=attention, settings=settings, progress=progress)
            record["transformers"][attention] = theirs
            record["comparison"][f"vs_{attention}_attention"] = compare(record["samrt"], theirs)
    return record
